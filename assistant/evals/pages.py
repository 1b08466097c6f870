"""The HTML page of each eval report, built from its JSON form (so a saved report renders again).

Besides the aggregates, every page that scores questions lists each one it got wrong, in
full and unfolded: the misses (question, what was expected, what came back) and the
answerable questions wrongly declined (with the reason given), then every question folded.
"""

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


def _listing(heading: str, note: str, columns: list[str], rows: list[list[Any]], none: str) -> Section:
    """A section listing every case of one kind in full, or saying there are none."""
    if not rows:
        return Section(heading, notes=[none])
    return Section(f"{heading} ({len(rows)})", notes=[note], tables=[Table(columns, rows)])


def _expected(answers: list[str] | None) -> str:
    return " | ".join(answers) if answers else "(the documents do not say)"


def _found(sources: list[str], shown: int = 3) -> str:
    return ", ".join(f"{n}. {s}" for n, s in enumerate(sources[:shown], start=1)) or "nothing"


def _answer_lists(data: dict[str, Any]) -> list[Section]:
    """The wrong answers, the answerable questions declined and the unanswerable ones answered, per route."""
    cases = data["cases"]

    def expected(c: dict[str, Any]) -> str:
        return _expected(c.get("expected") or ([] if not c["answerable"] else c["references"]))

    wrong = [c for c in cases if c["answerable"] and c["route"] != "abstain" and not c["scores"].get("contains_any")]
    declined = [c for c in cases if c["answerable"] and c["route"] == "abstain"]
    answered = [c for c in cases if not c["answerable"] and c["route"] != "abstain"]
    return [
        _listing(
            "Wrong answers",
            "Answerable questions whose answer holds none of the expected strings"
            + (" in the model's own words." if data["own_words"] else "."),
            ["route asked", "question", "expected", "expected source", "answer", "route", "cited"],
            [
                [
                    c["route_requested"],
                    c["question"],
                    expected(c),
                    c["expected_source"],
                    c["answer"],
                    c["route"],
                    ", ".join(c["cited"]) or "nothing",
                ]
                for c in wrong
            ],
            "No wrong answers: every answerable question that was answered holds an expected string.",
        ),
        _listing(
            "Wrongly declined",
            "Answerable questions the assistant declined, with the reason it gave.",
            ["route asked", "question", "expected", "expected source", "reason"],
            [[c["route_requested"], c["question"], expected(c), c["expected_source"], c["reason"]] for c in declined],
            "No answerable question was declined.",
        ),
        _listing(
            "Answered though the documents do not say",
            "Questions marked unanswerable (no expected answer) that got an answer.",
            ["route asked", "question", "answer", "route", "cited"],
            [
                [c["route_requested"], c["question"], c["answer"], c["route"], ", ".join(c["cited"]) or "nothing"]
                for c in answered
            ],
            "Every unanswerable question was declined.",
        ),
    ]


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
    sections.extend(_answer_lists(data))
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
    thresholds = ", ".join(f"{k} {v:g}" for k, v in data["thresholds"].items())
    latency = data["latency_ms"]
    section = Section(
        "Retrieval",
        notes=[
            f"{data['answerable']} answerable of {data['questions']} questions. "
            f"Thresholds{' (calibrated)' if data.get('calibrated') else ''}: {thresholds}. "
            f"Search latency: p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms."
        ],
        tables=[
            Table(["metric", "value"], [[k, v] for k, v in data["metrics"].items()]),
            Table(
                ["kind", "n", "hit@1", "hit@5", "MRR", "nDCG@10"],
                [
                    [
                        k,
                        sum(c["kind"] == k and c["answerable"] for c in data["cases"]),
                        *(data["by_kind"][k].get(m) for m in ("hit@1", "hit@5", "mrr", "ndcg@10")),
                    ]
                    for k in kinds
                ],
            ),
            Table(["abstention", "value"], [[k, v] for k, v in data["abstention"].items()]),
        ],
    )
    section.figures.append(
        _bars(kinds, {"hit@1": [data["by_kind"][k].get("hit@1") for k in kinds]}, "hit@1 per kind", "share")
    )
    cases = data["cases"]
    misses = [c for c in cases if c["answerable"] and c["rank"] != 1]
    declined = [c for c in cases if c["answerable"] and c["declined"]]
    answered = [c for c in cases if not c["answerable"] and not c["declined"]]
    return [
        section,
        _listing(
            "Not ranked first",
            "Answerable questions whose expected source was not the first found: its rank among the "
            "distinct sources found, and what came first.",
            ["question", "kind", "expected", "rank", "found first", "declined"],
            [
                [c["question"], c["kind"], c["expected"], c["rank"] or "not found", _found(c["sources"]), c["declined"]]
                for c in misses
            ],
            "No misses: every answerable question found its expected source first.",
        ),
        _listing(
            "Wrongly declined",
            "Answerable questions the assistant would decline, with the reason it gives.",
            ["question", "kind", "expected", "rank", "found first", "reason"],
            [
                [c["question"], c["kind"], c["expected"], c["rank"] or "not found", _found(c["sources"]), c["reason"]]
                for c in declined
            ],
            "No answerable question was declined.",
        ),
        _listing(
            "Not declined though the documents do not say",
            "Questions marked unanswerable that search would answer from these sources.",
            ["question", "kind", "found first", "confidence before the draft"],
            [
                [c["question"], c["kind"], _found(c["sources"]), c["signals"].get("confidence_before_draft")]
                for c in answered
            ],
            "Every unanswerable question was declined.",
        ),
        Section(
            "Every question",
            details=Table(
                ["question", "kind", "expected", "rank", "found first", "declined", "reason", "ms"],
                [
                    [
                        c["question"],
                        c["kind"],
                        c["expected"] or "(unanswerable)",
                        c["rank"],
                        _found(c["sources"]),
                        c["declined"],
                        c["reason"],
                        c["latency_ms"],
                    ]
                    for c in cases
                ],
            ),
        ),
    ]


_LABELLED_BY = {"ratings": "(what people rated correct)", "large": "(agreement with the large model's answer)"}


def _wrong_row(turn: dict[str, Any], verdict: object, confidence: object) -> list[object]:
    """A listed turn: question, label source, expected, reply, then the route or whether it was right."""
    return [turn["question"], turn["group"], _turn_expected(turn), turn["answer"], verdict, confidence]


def _turn_expected(turn: dict[str, Any]) -> str:
    if not turn["answerable"] or turn.get("expected"):
        return _expected(turn.get("expected"))
    return _LABELLED_BY.get(turn["group"], "(an expected string)")


def _routing(data: dict[str, Any]) -> list[Section]:
    turns = data.get("turns", [])
    confidences = data.get("confidences") or [None] * len(turns)
    section = Section(
        "Confidence and signals",
        notes=[f"{data['labelled']} labelled replies, {data['accuracy']:.1%} right."],
        tables=[
            Table(["signal", "AUROC"], [[k, v] for k, v in data["auroc"].items()]),
            Table(
                ["confidence at least", "share kept", "accuracy of those kept"],
                [[p["threshold"], p["coverage"], p["accuracy"]] for p in data.get("curve", [])],
            ),
        ],
    )
    point = data.get("operating_point")
    if point:
        section.tables.append(Table(["operating point", "value"], [[k, v] for k, v in point.items()]))
    diagram = reliability(
        [float(t["signals"].get("confidence") or 0.0) for t in turns],
        [bool(t["correct"]) for t in turns],
        "Confidence vs the reply being right",
    )
    if diagram:
        section.figures.append(diagram)
    wrong = [i for i, t in enumerate(turns) if t["route"] != "abstain" and not t["correct"]]
    declined = data.get("wrongly_declined", [])
    at = f" (below decline_confidence {point['decline_confidence']})" if point else ""
    return [
        section,
        _listing(
            "Wrong replies",
            "Replies shown that are not right: an answerable question without an expected string in "
            "the reply, or any reply to a question the documents do not answer.",
            ["question", "labelled by", "expected", "reply", "route", "confidence"],
            [_wrong_row(turns[i], turns[i]["route"], confidences[i]) for i in wrong],
            "No wrong replies.",
        ),
        _listing(
            "Wrongly declined",
            f"Answerable questions declined, or that the operating point would decline{at}.",
            ["question", "labelled by", "expected", "reply", "right", "confidence"],
            [_wrong_row(turns[i], turns[i]["correct"], confidences[i]) for i in declined],
            "No answerable question was declined.",
        ),
        Section(
            "Every reply",
            details=Table(
                ["question", "labelled by", "answerable", "reply", "route", "right", "confidence"],
                [
                    [t["question"], t["group"], t["answerable"], t["answer"], t["route"], t["correct"], confidences[n]]
                    for n, t in enumerate(turns)
                ],
            ),
        ),
    ]


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
