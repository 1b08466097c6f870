"""`assistant eval ...`: measure the assistant on a team's own labelled questions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli_support import assistant_from, errors_to_exit

if TYPE_CHECKING:
    from assistant.core import Assistant
    from assistant.evals.retrieval import RetrievalReport
    from assistant.evals.routing import RoutingReport, ThresholdRow

__all__ = [
    "assistant_and_collection",
    "evaluate",
    "give_report",
    "print_retrieval_report",
    "print_routing_report",
    "report_options",
]


def report_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every eval command shares: where settings go and how the report is given."""
    decorators: list[Callable[[Any], Any]] = [
        click.option(
            "--settings-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="TOML file to write (default: ASSISTANT_CONFIG or ./assistant.toml).",
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
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


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
@click.option(
    "--retention",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Operating point: the lowest escalation rate keeping this share of the always-escalate accuracy.",
)
@click.option(
    "--signal",
    type=click.Choice(["mean_logprob", "min_logprob", "support", "score_gap"]),
    help="Signal of the operating point (default: the one with the highest AUROC).",
)
@click.option("--no-large", is_flag=True, help="Do not ask the large model, even if one is configured.")
@click.option(
    "--ratings",
    "use_ratings",
    is_flag=True,
    help="Also take people's ratings (eval review import) of local answers as labels.",
)
@click.option("--write-settings", is_flag=True, help="Write the operating point to the settings file.")
@report_options
def eval_routing(
    ctx: click.Context,
    qa_file: Path | None,
    collection: str | None,
    retention: float,
    signal: str | None,
    no_large: bool,
    use_ratings: bool,
    write_settings: bool,
    settings_file: Path | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """How well each routing signal predicts a correct local answer, and where to set the threshold.

    Labels come from QA_FILE (a local answer is right when it holds an expected string),
    from people's ratings (--ratings), or both."""
    from rich.console import Console
    from rich.progress import Progress

    from assistant.evals.qa import load_qa
    from assistant.evals.routing import cases_from_ratings, run_cases, settings_for, summarize
    from assistant.settings import write_settings as save

    if qa_file is None and not use_ratings:
        raise click.UsageError("give a QA_FILE, --ratings, or both: they are where the labels come from")
    items = load_qa(qa_file) if qa_file else []
    bot, name = assistant_and_collection(ctx, collection)
    answerable = [i for i in items if i.answers]
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("questions", total=len(answerable))
        cases = run_cases(
            bot,
            answerable,
            name,
            with_large=not no_large and not use_ratings,  # rated turns carry no large-model label
            on_case=lambda n, _case: progress.update(task, completed=n),
        )
    if use_ratings:
        ratings = bot.memory.ratings.ratings()
        turns = bot.memory.ratings.turns(turn_ids=[r.turn_id for r in ratings]) if ratings else []
        cases += cases_from_ratings(turns, ratings, bot.pipeline.policy)
    if not cases:
        raise click.ClickException("no labelled local answers: give answerable questions or import ratings first")
    report = summarize(cases, collection=name, skipped=len(items) - len(answerable), retention=retention, signal=signal)
    give_report(report.to_dict(), as_json, output, lambda: print_routing_report(report))
    if write_settings:
        if report.operating_point is None:
            raise click.ClickException("no operating point: the local answers were all right or all wrong")
        values = settings_for(report.operating_point)
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
@click.option(
    "--max-false-abstention",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="With --calibrate: most answerable questions that may be declined, as a share.",
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


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_routing_report(report: RoutingReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    skipped = (
        f" ({report.skipped_unanswerable} without expected answers skipped)" if report.skipped_unanswerable else ""
    )
    console.print(f"[bold]{report.questions} questions[/bold] on collection {report.collection!r}{skipped}")
    console.print(f"local model accuracy: {_pct(report.local_accuracy)}")
    console.print(f"large model accuracy (always escalate): {_pct(report.large_accuracy)}")
    console.print(
        f"router with the current settings: escalates {_pct(report.configured['escalation_rate'])}, "
        f"accuracy {_pct(report.configured['accuracy'])}"
    )
    aurocs = Table(title="AUROC of each signal for predicting a correct local answer")
    aurocs.add_column("signal")
    aurocs.add_column("AUROC", justify="right")
    for name, value in sorted(report.auroc.items(), key=lambda kv: -(kv[1] or 0)):
        aurocs.add_row(name, "n/a" if value is None else f"{value:.3f}")
    console.print(aurocs)
    point = report.operating_point
    for signal, rows in report.tables.items():
        if point is not None and signal != point.signal:
            continue
        table = Table(title=f"Escalating when {signal} is below the threshold")
        for column in ("threshold", "escalation rate", "router accuracy", "accuracy of answers kept local"):
            table.add_column(column, justify="right")
        for row in _spread(rows):
            table.add_row(
                f"{row.threshold:.4g}", _pct(row.escalation_rate), _pct(row.accuracy), _pct(row.kept_local_accuracy)
            )
        console.print(table)
    if point is not None:
        kept = f", {_pct(point.retention)} of the always-escalate accuracy" if point.retention is not None else ""
        console.print(
            f"operating point: {point.setting} = {point.threshold:.4g} → escalates {_pct(point.escalation_rate)}, "
            f"accuracy {_pct(point.accuracy)}{kept} (target {report.retention_target:.0%})"
        )
    per = report.seconds_per_question
    console.print(f"seconds per question: local {per['local']:.2f}, large {per['large']:.2f}")


def _spread(rows: list[ThresholdRow]) -> list[ThresholdRow]:
    """About a dozen rows spread over the escalation rates, always with both ends."""
    if len(rows) <= 12:
        return rows
    picked: list[ThresholdRow] = []
    seen: set[int] = set()
    for target in [i / 10 for i in range(11)]:
        row = min(rows, key=lambda r: abs(r.escalation_rate - target))
        if id(row) not in seen:
            seen.add(id(row))
            picked.append(row)
    return sorted(picked, key=lambda r: r.escalation_rate)
