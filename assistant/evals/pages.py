"""The HTML page of each eval report, built from its JSON form (so a saved report renders again)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from assistant.evals.html import Page, Section, Table, figure, render

__all__ = ["html_report", "reliability"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reliability(confidences: list[float], outcomes: list[bool], title: str, bins: int = 5) -> str | None:
    """A reliability diagram: the share of right answers in each confidence bin, against the diagonal."""
    if len(confidences) < 2:
        return None
    plt = _pyplot()
    edges = [i / bins for i in range(bins + 1)]
    xs, ys, counts = [], [], []
    for low, high in itertools.pairwise(edges):
        inside = [o for c, o in zip(confidences, outcomes, strict=True) if low <= c < high or (high == 1 and c == 1)]
        if inside:
            xs.append((low + high) / 2)
            ys.append(sum(inside) / len(inside))
            counts.append(len(inside))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999", label="perfectly calibrated")
    ax.bar(xs, ys, width=0.9 / bins, alpha=0.7, label="share right")
    for x, y, n in zip(xs, ys, counts, strict=True):
        ax.annotate(f"n={n}", (x, y), ha="center", va="bottom", fontsize=8)
    ax.set(xlim=(0, 1), ylim=(0, 1.1), xlabel="confidence: exp(mean token log-probability)", ylabel="share right")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return figure(fig)


def _bars(
    groups: list[str], series: dict[str, list[float | None]], title: str, ylabel: str, line: float | None = None
) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(groups) * max(1, len(series))), 3.6))
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        xs = [i + n * width for i in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width=width, label=name)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(groups))], groups, rotation=20, ha="right")
    if line is not None:
        ax.axhline(line, color="#b00020", linestyle="--", linewidth=1, label=f"threshold {line}")
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=8)
    return figure(fig)


def _histograms(series: dict[str, list[float]], title: str, xlabel: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in series.items():
        if values:
            ax.hist(values, bins=10, alpha=0.55, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel="answers")
    ax.legend(fontsize=8)
    return figure(fig)


def _answers(data: dict[str, Any]) -> list[Section]:
    routes = data["routes"]
    metrics = [m for m in next(iter(data["by_route"].values())) if m != "n"]
    summary = Section(
        "Scores by route",
        notes=[
            "BLEU and chrF: sacrebleu; ROUGE-L F: rouge-score; nDCG@10, MRR, P@1 of the cited sources: "
            "ir-measures. Overlap scores are over the answerable questions"
            + (
                ", of the model's own words (quoted evidence removed)."
                if data["own_words"]
                else ", of the whole reply."
            )
        ],
        tables=[
            Table(["metric", *routes], [[m, *(data["by_route"][r].get(m) for r in routes)] for m in metrics]),
            Table(["cost", *routes], [[k, *(data["cost"][r][k] for r in routes)] for k in data["cost"][routes[0]]]),
        ],
    )
    cases = data["cases"]
    summary.figures.append(
        _histograms(
            {
                r: [c["scores"]["rouge_l"] for c in cases if c["route_requested"] == r and c["answerable"]]
                for r in routes
            },
            "ROUGE-L of each answer",
            "ROUGE-L F",
        )
    )
    kinds = list(data["by_kind"])
    summary.figures.append(
        _bars(
            kinds,
            {r: [data["by_kind"][k][r]["contains_any"] for k in kinds] for r in routes},
            "Right answers (contains an expected string) per kind",
            "share",
        )
    )
    diagram = reliability(
        [float(c["scores"].get("confidence") or 0.0) for c in cases],
        [c["scores"].get("reply_right") == 1.0 for c in cases],
        "Confidence vs the reply being right (a reply to an unanswerable question is wrong)",
    )
    if diagram:
        summary.figures.append(diagram)
    sections = [summary]
    if data.get("agreement"):
        agree = data["agreement"]
        sections.append(
            Section(
                "Agreement with people",
                notes=[
                    f"{agree['rated_turns']} rated turns whose question is in the QA file. Spearman correlation of "
                    "each automatic score with the rating (correct 1, partly 0.5, wrong 0); contains-any against "
                    f"'correct': agreement {agree['contains_any_agrees']}, Cohen's kappa {agree['cohen_kappa']}."
                ],
                tables=[Table(["metric", "Spearman ρ"], [[k, v] for k, v in agree["spearman"].items()])],
            )
        )
    sections.append(
        Section(
            "Every answer",
            details=Table(
                ["route asked", "kind", "question", "answer", "route", "cited", "ROUGE-L", "contains", "cited right"],
                [
                    [
                        c["route_requested"],
                        c["kind"],
                        c["question"],
                        c["answer"],
                        c["route"],
                        ", ".join(c["cited"]),
                        c["scores"].get("rouge_l"),
                        c["scores"].get("contains_any"),
                        c["scores"].get("citation_correct"),
                    ]
                    for c in cases
                ],
            ),
        )
    )
    return sections


def _perplexity(data: dict[str, Any]) -> list[Section]:
    models = data["models"]
    names = [m["model"] for m in models]
    section = Section(
        "Perplexity by model",
        notes=[
            f"{data['sample']} chunks of collection '{data['collection']}' drawn with seed {data['seed']}. "
            "Per-token perplexities of models with different tokenizers are not comparable (a coarser "
            "vocabulary means fewer, harder tokens); compare bits per character or word-level perplexity. "
            "'shuffled' scores the same words in random order: the gap shows how much the model's fit "
            "comes from the text's order rather than its vocabulary."
        ],
        tables=[
            Table(
                ["model", "texts", "tokens", "per token", "per word", "bits / char", "shuffled, per word", "seconds"],
                [
                    [
                        m["model"],
                        m["texts"],
                        m["tokens"],
                        m["per_token"],
                        m["per_word"],
                        m["bits_per_char"],
                        m["shuffled_per_word"],
                        m["seconds"],
                    ]
                    for m in models
                ],
            )
        ],
    )
    section.figures.append(
        _bars(names, {"bits per character": [m["bits_per_char"] for m in models]}, "Bits per character", "bits")
    )
    section.figures.append(
        _histograms(
            {m["model"]: m["bits_per_char_of_each"] for m in models}, "Bits per character of each chunk", "bits"
        )
    )
    return [section]


def _bias(data: dict[str, Any]) -> list[Section]:
    attributes = data["attributes"]
    names = list(attributes)
    rows = []
    for name, summary in attributes.items():
        for group, values in summary["groups"].items():
            rows.append([name, group, values["variants"], values["abstained"], values["escalated"], values["correct"]])
    flagged = data["flagged"]
    section = Section(
        "Gaps between groups",
        notes=[
            f"Flagged (a gap above {data['max_gap']} or a cross-group answer similarity below "
            f"{data['min_similarity']}): {', '.join(flagged) if flagged else 'none'}."
        ],
        tables=[
            Table(
                ["attribute", "cross-group similarity", "lowest", "within-group", "largest gap", "in"],
                [
                    [
                        n,
                        s["cross_group_similarity"],
                        s["lowest_cross_group_similarity"],
                        s["within_group_similarity"],
                        s["largest_gap"],
                        s["largest_gap_in"],
                    ]
                    for n, s in attributes.items()
                ],
            ),
            Table(["attribute", "group", "variants", "abstained", "escalated", "correct"], rows),
        ],
        details=Table(
            ["attribute", "group", "question", "answer", "route", "reason"],
            [
                [v["attribute"], v["group"], v["question"], v["answer"], v["route"], v.get("reason", "")]
                for v in data["variants"]
            ],
        ),
    )
    section.figures.append(
        _bars(
            names,
            {"largest gap": [attributes[n]["largest_gap"] for n in names]},
            "Largest gap per attribute",
            "rate difference",
            line=data["max_gap"],
        )
    )
    section.figures.append(
        _bars(
            names,
            {"lowest cross-group similarity": [attributes[n]["lowest_cross_group_similarity"] for n in names]},
            "Answer similarity across groups",
            "cosine",
            line=data["min_similarity"],
        )
    )
    return [section]


def _retrieval(data: dict[str, Any]) -> list[Section]:
    kinds = list(data["by_kind"])
    section = Section(
        "Retrieval",
        tables=[
            Table(["metric", "value"], [[k, v] for k, v in data["metrics"].items()]),
            Table(["abstention", "value"], [[k, v] for k, v in data["abstention"].items()]),
        ],
    )
    section.figures.append(
        _bars(kinds, {"hit@1": [data["by_kind"][k].get("hit@1") for k in kinds]}, "hit@1 per kind", "share")
    )
    return [section]


def _routing(data: dict[str, Any]) -> list[Section]:
    turns = data.get("turns", [])
    section = Section(
        "Confidence and signals",
        tables=[
            Table(["signal", "AUROC"], [[k, v] for k, v in data["auroc"].items()]),
            Table(
                ["confidence at least", "share kept", "accuracy of those kept"],
                [[p["threshold"], p["coverage"], p["accuracy"]] for p in data.get("curve", [])],
            ),
        ],
    )
    diagram = reliability(
        [float(t["signals"].get("confidence") or 0.0) for t in turns],
        [bool(t["correct"]) for t in turns],
        "Confidence vs the reply being right",
    )
    if diagram:
        section.figures.append(diagram)
    return [section]


_PAGES: dict[str, Callable[[dict[str, Any]], list[Section]]] = {
    "answers": _answers,
    "perplexity": _perplexity,
    "bias": _bias,
    "retrieval": _retrieval,
    "routing": _routing,
}


def html_report(data: dict[str, Any]) -> str:
    kind = data["kind"]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"collection '{data.get('collection', '')}', written {when}"
    return render(Page(f"assistant eval {kind}", subtitle, _PAGES[kind](data)))
