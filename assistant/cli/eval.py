"""`assistant eval ...`: measure the assistant on a team's own labelled questions.

The group, what its commands share (options, the report written as JSON and HTML,
the eval extra checked first), and `eval routing` and `eval retrieval`; the field's
quality measures are in eval_quality, human review in review."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.support import assistant_from, errors_to_exit
from assistant.extras import require_extra

if TYPE_CHECKING:
    from assistant.core import Assistant
    from assistant.evals.confidence import CoveragePoint
    from assistant.evals.retrieval import RetrievalReport
    from assistant.evals.routing import RoutingReport

__all__ = [
    "assistant_and_collection",
    "evaluate",
    "give_report",
    "print_retrieval_report",
    "print_routing_report",
    "report_options",
]


def report_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every eval command shares: where settings go and how the report is given.

    Every command that writes a report needs the eval extra; a missing one is named first."""
    decorators: list[Callable[[Any], Any]] = [
        click.option(
            "--settings-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="TOML file to write (default: ASSISTANT_CONFIG, else the project's "
            "or the working directory's assistant.toml).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (every question included)."),
        click.option(
            "-o",
            "--output",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Where to write the JSON report; the HTML report goes beside it (.html). "
            "Default: eval-reports/KIND-TIME.json.",
        ),
        click.pass_context,
        errors_to_exit,
        _needs_eval_extra,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def _needs_eval_extra(command: Callable[..., None]) -> Callable[..., None]:
    """Metrics and report plots come with `assistant[eval]`: say so before any model runs."""

    @wraps(command)
    def checked(ctx: click.Context, *args: Any, **kwargs: Any) -> None:
        require_extra("eval", f"`{ctx.command_path}`")
        command(ctx, *args, **kwargs)

    return checked


def share_option(flag: str, default: float, help: str, *, lowest: float = 0.0) -> Callable[[Any], Any]:
    """An option whose value is a share (or a cosine, from `lowest`) up to 1, its default shown."""
    return click.option(flag, default=default, show_default=True, type=click.FloatRange(lowest, 1.0), help=help)


def give_report(data: dict[str, Any], as_json: bool, output: Path | None, show: Callable[[], None]) -> None:
    """The report written as JSON and self-contained HTML, then printed as JSON (--json) or as tables."""
    from datetime import datetime

    from assistant.evals.pages import html_report

    document = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    if output is None:
        output = Path("eval-reports") / f"{data['kind']}-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(document + "\n", encoding="utf-8")
    page = output.with_suffix(".html")
    page.write_text(html_report(json.loads(document)), encoding="utf-8")
    if as_json:
        click.echo(document)
    else:
        show()
    click.echo(f"report: {output} and {page}", err=True)


def assistant_and_collection(ctx: click.Context, collection: str | None) -> tuple[Assistant, str]:
    """The assistant and the collection to evaluate; an unknown collection fails before any model runs."""
    bot = assistant_from(ctx)
    name = collection or bot.settings.default_collection
    bot.describe_collection(name)
    return bot, name


@click.group("eval")
def evaluate() -> None:
    """Measure the assistant on a team's own data; every report is written as JSON and HTML."""


@evaluate.command("routing")
@click.argument("qa_file", required=False, type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--collection", "-c", help="Collection to answer from (default: the default_collection setting).")
@share_option(
    "--target-accuracy",
    0.9,
    "Operating point: the lowest confidence whose confident replies are at least this share right.",
)
@share_option(
    "--max-false-decline",
    0.05,
    "Operating point: the share of answerable questions that may be declined.",
)
@click.option(
    "--ratings",
    "use_ratings",
    is_flag=True,
    help="Also take people's ratings (eval review import) of local answers as labels.",
)
@click.option(
    "--escalations",
    "use_escalations",
    is_flag=True,
    help="Also take turns the large model answered as labels of the local draft (agreement with it).",
)
@click.option("--fit", "refit", is_flag=True, help="Refit the confidence model on these labels.")
@click.option(
    "--model-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --fit: where to write the model (default: <data_dir>/confidence-<collection>.json).",
)
@click.option(
    "--write-settings",
    is_flag=True,
    help="Write the operating point (and with --fit the model's file) to the settings file.",
)
@report_options
def eval_routing(
    ctx: click.Context,
    qa_file: Path | None,
    collection: str | None,
    target_accuracy: float,
    max_false_decline: float,
    use_ratings: bool,
    use_escalations: bool,
    refit: bool,
    model_file: Path | None,
    write_settings: bool,
    settings_file: Path | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """How well the confidence tells right replies from wrong, its operating points, and a refit.

    Labels come from QA_FILE (a reply is right when it holds an expected string; any
    reply to an unanswerable question is wrong), from people's ratings (--ratings),
    and from turns the large model answered (--escalations)."""
    from rich.console import Console
    from rich.progress import Progress

    from assistant.evals.confidence import fit
    from assistant.evals.qa import load_qa
    from assistant.evals.routing import collect_labelled, summarize, turns_from_escalations, turns_from_ratings
    from assistant.settings import write_settings as save

    if qa_file is None and not use_ratings and not use_escalations:
        raise click.UsageError("give a QA_FILE, --ratings or --escalations: they are where the labels come from")
    items = load_qa(qa_file) if qa_file else []
    bot, name = assistant_and_collection(ctx, collection)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("questions", total=len(items))
        turns = collect_labelled(bot, items, name, on_turn=lambda n, _turn: progress.update(task, completed=n))
    if use_ratings:
        ratings = bot.ratings()
        stored = bot.turns(turn_ids=[r.turn_id for r in ratings]) if ratings else []
        turns += turns_from_ratings(stored, ratings)
    if use_escalations:
        turns += turns_from_escalations(bot.turns(route="large"))
    if not turns:
        raise click.ClickException(
            "no labelled turns: give questions, import ratings, or let the router escalate first"
        )
    model = bot.confidence_model
    if refit:
        try:
            model = fit(turns, fitted_on=f"{len(turns)} labelled turns of collection {name!r}")
        except ValueError as exc:
            raise click.ClickException(f"cannot fit: {exc}") from None
    report = summarize(
        turns,
        model,
        collection=name,
        fitted=refit,
        target_accuracy=target_accuracy,
        max_false_decline=max_false_decline,
    )
    give_report(report.to_dict(), as_json, output, lambda: print_routing_report(report))
    values: dict[str, Any] = {}
    if refit:
        target = model_file or bot.settings.data_dir / f"confidence-{name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(model.to_json() + "\n", encoding="utf-8")
        click.echo(f"wrote the fitted confidence model to {target}", err=True)
        values["confidence_model"] = str(target.resolve())
    if write_settings:
        point = report.operating_point
        if point is None:
            raise click.ClickException("no operating point: the labelled replies were all right or all wrong")
        values |= {"answer_confidence": point.answer_confidence, "decline_confidence": point.decline_confidence}
        path = save(values, settings_file)
        shown = ", ".join(f"{k} = {v}" for k, v in values.items())
        click.echo(f"wrote {shown} to {path}", err=True)


@evaluate.command("retrieval")
@click.argument("qa_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--collection", "-c", help="Collection to search (default: the default_collection setting).")
@click.option(
    "--calibrate",
    "calibrate_thresholds",
    is_flag=True,
    help="Choose the abstention thresholds from this file's labels (needs unanswerable questions).",
)
@share_option(
    "--max-false-abstention",
    0.05,
    "With --calibrate: most answerable questions that may be declined, as a share.",
)
@click.option("--write-settings", is_flag=True, help="With --calibrate: write the thresholds to the settings file.")
@report_options
def eval_retrieval(
    ctx: click.Context,
    qa_file: Path,
    collection: str | None,
    calibrate_thresholds: bool,
    max_false_abstention: float,
    write_settings: bool,
    settings_file: Path | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """Hit@1, hit@5, MRR, nDCG@10 and abstention of search on labelled questions; no model runs."""
    from rich.console import Console
    from rich.progress import Progress

    from assistant.evals.qa import load_qa
    from assistant.evals.retrieval import evaluate_retrieval
    from assistant.settings import write_settings as save

    if write_settings and not calibrate_thresholds:
        raise click.UsageError("--write-settings writes calibrated thresholds: add --calibrate")
    items = load_qa(qa_file)
    if calibrate_thresholds and all(i.answers for i in items):
        raise click.UsageError(f'{qa_file} has no unanswerable question ("answers": []); calibration needs both kinds')
    bot, name = assistant_and_collection(ctx, collection)
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("questions", total=len(items))
        report = evaluate_retrieval(
            bot,
            items,
            name,
            calibrate_thresholds=calibrate_thresholds,
            max_false_abstention=max_false_abstention,
            on_case=lambda _case: progress.advance(task),
        )
    give_report(report.to_dict(), as_json, output, lambda: print_retrieval_report(report))
    if write_settings and report.calibrated is not None:
        path = save(report.calibrated, settings_file)
        shown = ", ".join(f"{k} = {v}" for k, v in report.calibrated.items())
        click.echo(f"wrote {shown} to {path}", err=True)


def print_retrieval_report(report: RetrievalReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = report.metrics
    table = Table(title=f"Retrieval on '{report.collection}': {report.answerable} answerable of {report.questions}")
    for column in ("questions", "n", "hit@1", "hit@5", "MRR", "nDCG@10"):
        table.add_column(column, justify="right" if column != "questions" else "left")

    def row(label: str, n: int, values: dict[str, float | None]) -> None:
        table.add_row(label, str(n), *(_num(values[k]) for k in ("hit@1", "hit@5", "mrr", "ndcg@10")))

    row("all answerable", report.answerable, m)
    for kind, values in report.by_kind.items():
        row(f"  {kind}", sum(c.kind == kind and c.answerable for c in report.cases), values)
    console.print(table)
    a = report.abstention
    console.print(
        f"Abstention: {a['declined']} declined; precision {_pct(a['precision'])}, recall {_pct(a['recall'])} "
        f"of unanswerable; {a['false_abstentions']} answerable wrongly declined ({_pct(a['false_abstention_rate'])})."
    )
    shown = ", ".join(f"{k} {v:g}" for k, v in report.thresholds.items())
    console.print(f"Thresholds{' (calibrated)' if report.calibrated else ''}: {shown}")
    console.print(f"Search latency: p50 {report.latency_ms['p50']:.1f} ms, p95 {report.latency_ms['p95']:.1f} ms")
    if report.misses:
        misses = Table(title="Not ranked first")
        for column in ("question", "expected", "rank", "found first"):
            misses.add_column(column)
        for case in report.misses:
            misses.add_row(
                case.question, case.expected or "", str(case.rank or "-"), ", ".join(case.sources[:2]) or "nothing"
            )
        console.print(misses)
    if report.false_abstentions:
        console.print("Wrongly declined:")
        for case in report.false_abstentions:
            console.print(f"  {case.question} — {case.reason}")
    answered = [c for c in report.cases if not c.answerable and not c.declined]
    if answered:
        console.print("Not declined though the documents do not say:")
        for case in answered:
            console.print(f"  {case.question} — found first: {', '.join(case.sources[:2]) or 'nothing'}")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_routing_report(report: RoutingReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    sources = ", ".join(f"{n} from {g}" for g, n in report.sources.items())
    console.print(f"[bold]{report.labelled} labelled replies[/bold] on collection {report.collection!r} ({sources})")
    console.print(f"replies right: {_pct(report.accuracy)}{' · model refitted on them' if report.fitted else ''}")
    aurocs = Table(title="AUROC for 'the reply shown is right': the confidence, and each signal alone")
    aurocs.add_column("signal")
    aurocs.add_column("AUROC", justify="right")
    for name, value in sorted(report.auroc.items(), key=lambda kv: -(kv[1] or 0)):
        aurocs.add_row(name, "n/a" if value is None else f"{value:.3f}")
    console.print(aurocs)
    curve = Table(title="Risk-coverage: replies kept at or above a confidence")
    for column in ("confidence", "share kept", "accuracy of those kept"):
        curve.add_column(column, justify="right")
    for point in _spread(report.curve):
        curve.add_row(f"{point.threshold:.3f}", _pct(point.coverage), _pct(point.accuracy))
    console.print(curve)
    console.print(
        f"{len(report.wrong)} wrong replies, {len(report.wrongly_declined)} answerable questions declined "
        "(each listed in the HTML report)"
    )
    op = report.operating_point
    if op is not None:
        console.print(
            f"operating point: answer_confidence = {op.answer_confidence:.3f} (confident replies "
            f"{_pct(op.confident_share)} of all, {_pct(op.confident_accuracy)} right), decline_confidence = "
            f"{op.decline_confidence:.3f} (answerable declined {_pct(op.declined_answerable)})"
        )


def _spread(points: list[CoveragePoint]) -> list[CoveragePoint]:
    """About a dozen points spread over the coverage, always with both ends."""
    if len(points) <= 12:
        return points
    picked: dict[int, CoveragePoint] = {}
    for target in [i / 10 for i in range(11)]:
        point = min(points, key=lambda p: abs(p.coverage - target))
        picked[id(point)] = point
    return sorted(picked.values(), key=lambda p: p.coverage)
