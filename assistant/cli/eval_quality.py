"""`assistant eval perplexity | answers | bias | compare`: the field's measures on a team's own data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant.cli.eval import assistant_and_collection, give_report, report_options, share_option
from assistant.cli.support import errors_to_exit

if TYPE_CHECKING:
    from assistant.evals.answers import AnswersReport
    from assistant.evals.bias import BiasReport
    from assistant.evals.perplexity import PerplexityReport

__all__ = ["eval_answers", "eval_bias", "eval_compare", "eval_perplexity"]


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr; yields the function that advances it by one."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda: progress.advance(task)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    Console().print(table)


@click.command("perplexity")
@click.option(
    "--collection", "-c", help="Collection whose chunks are scored (default: the default_collection setting)."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A GGUF model to score; repeat to compare several (default: the configured local model).",
)
@click.option(
    "--sample", default=50, show_default=True, type=click.IntRange(1), help="Chunks drawn from the collection."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the draw: the same chunks every run.")
@click.option(
    "--context", default=1024, show_default=True, type=click.IntRange(64), help="Tokens scored per chunk at most."
)
@click.option("--no-control", is_flag=True, help="Do not also score each chunk with its words shuffled.")
@report_options
def eval_perplexity(
    ctx: click.Context,
    collection: str | None,
    models: tuple[Path, ...],
    sample: int,
    seed: int,
    context: int,
    no_control: bool,
    settings_file: Path | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """How well each local model predicts the collection's own text (lower is better)."""
    from assistant.evals.perplexity import score_texts
    from assistant.llamacpp import bundled_gguf_path

    bot, name = assistant_and_collection(ctx, collection)
    texts = bot.sample_chunks(name, sample, seed)
    if not texts:
        raise click.ClickException(f"collection '{name}' has no chunks to score; ingest documents first")
    paths = list(models) or [bot.settings.llm_model_path or bundled_gguf_path()]
    with _progress("chunks", len(texts) * len(paths)) as advance:
        report = score_texts(
            paths,
            texts,
            collection=name,
            seed=seed,
            n_ctx=context,
            n_threads=bot.settings.llm_threads,
            control=not no_control,
            on_text=lambda _model, _n: advance(),
        )
    give_report(report.to_dict(), as_json, output, lambda: _show_perplexity(report))


def _show_perplexity(report: PerplexityReport) -> None:
    _table(
        f"perplexity on {report.sample} chunks of '{report.collection}' (seed {report.seed})",
        ["model", "tokens", "per token", "per word", "bits/char", "shuffled per word", "s"],
        [
            [m.model, m.tokens, m.per_token, m.per_word, m.bits_per_char, m.shuffled_per_word, m.seconds]
            for m in report.models
        ],
    )
    click.echo("Compare models by bits per character or per word: their tokenizers differ, per-token values do not.")


@click.command("answers")
@click.argument("qa_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--collection", "-c", help="Collection to answer from (default: the default_collection setting).")
@click.option(
    "--route",
    "routes",
    multiple=True,
    type=click.Choice(["local", "large", "auto"]),
    help="Route to answer by; repeat to compare routes side by side (default: auto).",
)
@click.option("--own-words", is_flag=True, help="Score only the model's words, without the quoted evidence.")
@report_options
def eval_answers(
    ctx: click.Context,
    qa_file: Path,
    collection: str | None,
    routes: tuple[str, ...],
    own_words: bool,
    settings_file: Path | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """Answers scored against references: BLEU, chrF, ROUGE-L, token F1, citations, abstention, cost."""
    from assistant.evals.answers import evaluate_answers
    from assistant.evals.qa import load_qa

    items = load_qa(qa_file)
    bot, name = assistant_and_collection(ctx, collection)
    chosen = list(dict.fromkeys(routes)) or ["auto"]
    if "large" in chosen and bot.fallback is None:
        raise click.UsageError("--route large needs a large model: set ASSISTANT_FALLBACK_BASE_URL and _MODEL")
    with _progress("answers", len(items) * len(chosen)) as advance:
        report = evaluate_answers(
            bot,
            items,
            name,
            qa_file=str(qa_file),
            routes=chosen,
            words_only=own_words,
            on_case=lambda _r, _n: advance(),
        )
    give_report(report.to_dict(), as_json, output, lambda: _show_answers(report))


def _show_answers(report: AnswersReport) -> None:
    metrics = [m for m in next(iter(report.by_route.values())) if m not in ("n", "risk_coverage")]
    _table(
        f"answers to {report.questions} questions ({report.answerable} answerable) from '{report.collection}'",
        ["metric", *report.routes],
        [[m, *(report.by_route[r].get(m) for r in report.routes)] for m in metrics]
        + [[k, *(report.cost[r][k] for r in report.routes)] for k in report.cost[report.routes[0]]],
    )
    for route in report.routes:
        curve = report.by_route[route].get("risk_coverage") or []
        if curve:
            # A few points of the risk-coverage curve: accuracy of the replies kept at each share kept.
            shown = [curve[min(len(curve) - 1, round(i * (len(curve) - 1) / 4))] for i in range(5)]
            points = ", ".join(f"{p['coverage']:.0%} kept → {p['accuracy']:.0%} right" for p in shown)
            click.echo(f"risk-coverage ({route}, by confidence): {points}")
    answered = [c for c in report.cases if c.route != "abstain"]
    wrong = sum(c.answerable and not c.scores.get("contains_any") for c in answered)
    declined = sum(c.answerable and c.route == "abstain" for c in report.cases)
    unanswerable = sum(not c.answerable for c in answered)
    click.echo(
        f"{wrong} wrong answers, {declined} answerable questions declined, {unanswerable} unanswerable ones "
        "answered (each listed in the HTML report)"
    )
    if report.agreement:
        a = report.agreement
        click.echo(
            f"agreement with {a['rated_turns']} human ratings: contains-any agrees {a['contains_any_agrees']}, "
            f"kappa {a['cohen_kappa']}; Spearman ρ " + ", ".join(f"{k} {v}" for k, v in a["spearman"].items())
        )


@click.command("bias")
@click.argument("probe_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--collection", "-c", help="Collection to answer from (default: the default_collection setting).")
@share_option(
    "--max-gap",
    0.2,
    "Flag an attribute whose groups' abstention, escalation or correctness rates differ by more.",
)
@share_option(
    "--min-similarity",
    0.9,
    "Flag an attribute where two groups' answers to one template are less similar (cosine).",
    lowest=-1.0,
)
@click.option("--fail-on-flag", is_flag=True, help="Exit with status 1 when an attribute is flagged.")
@report_options
def eval_bias(
    ctx: click.Context,
    probe_file: Path,
    collection: str | None,
    max_gap: float,
    min_similarity: float,
    fail_on_flag: bool,
    settings_file: Path | None,
    as_json: bool,
    output: Path | None,
) -> None:
    """Counterfactual probes: do answers change when only a name, gender, age or origin does?"""
    from assistant.evals.bias import evaluate_bias, load_probes

    probes = load_probes(probe_file)
    bot, name = assistant_and_collection(ctx, collection)
    total = sum(len(values) for p in probes for values in p.groups.values())
    with _progress("variants", total) as advance:
        report = evaluate_bias(
            bot,
            probes,
            name,
            probe_file=str(probe_file),
            max_gap=max_gap,
            min_similarity=min_similarity,
            on_variant=lambda _n: advance(),
        )
    give_report(report.to_dict(), as_json, output, lambda: _show_bias(report))
    if fail_on_flag and report.flagged:
        raise SystemExit(1)


def _show_bias(report: BiasReport) -> None:
    _table(
        f"bias probes on '{report.collection}'",
        ["attribute", "cross-group similarity", "lowest", "largest gap", "in", "flagged"],
        [
            [
                name,
                s["cross_group_similarity"],
                s["lowest_cross_group_similarity"],
                s["largest_gap"],
                s["largest_gap_in"],
                "FLAGGED" if name in report.flagged else "",
            ]
            for name, s in report.attributes.items()
        ],
    )


@click.command("compare")
@click.argument("old", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("new", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--tolerance",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0),
    help="Changes smaller than this (relative, 0.02 = 2%) count as unchanged.",
)
@click.option("--fail-on-worse", is_flag=True, help="Exit with status 1 when any metric got worse: a CI gate.")
@errors_to_exit
def eval_compare(old: Path, new: Path, tolerance: float, fail_on_worse: bool) -> None:
    """What got better and worse between two reports of the same eval."""
    from assistant.evals.compare import compare, load_report

    rows = compare(load_report(old), load_report(new), tolerance=tolerance)
    if not rows:
        raise click.ClickException(f"{old} and {new} share no headline metric: are they reports of the same eval?")
    colour = {"better": "green", "worse": "red", "same": None, "new": None, "gone": "yellow"}
    for row in rows:
        shown = f"{row.verdict:7} {row.metric}: {_num(row.old)} → {_num(row.new)}"
        click.secho(shown, fg=colour[row.verdict])
    worse = [r for r in rows if r.verdict == "worse"]
    better = [r for r in rows if r.verdict == "better"]
    click.echo(
        f"{len(better)} better, {len(worse)} worse, {len(rows) - len(better) - len(worse)} unchanged or unpaired"
    )
    if fail_on_worse and worse:
        raise SystemExit(1)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


COMMANDS = [eval_perplexity, eval_answers, eval_bias, eval_compare]
