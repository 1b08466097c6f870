"""`assistant eval retrieval`: does search put the right page first, and decline what the documents do not say?

For every labelled question the collection is searched exactly as in a turn (same
options, same signals, no model runs), and the router's retrieval-level decision is
taken with the thresholds in settings. Ranks count distinct sources (files), so a
page found by three chunks counts once. Reported: hit@1, hit@5, MRR and nDCG@10 over
the answerable questions (overall and per `kind`), abstention precision and recall
over all questions, the answerable questions wrongly declined, every miss, and search
latency.

`calibrate` picks the abstention thresholds from the same cases: greedily, the
threshold change that declines the most unanswerable questions while at most
`max_false_abstention` of the answerable ones are declined.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from assistant.evals.qa import QAItem
from chains.facts import what_is_asked
from chains.route import RoutePolicy, Thresholds

if TYPE_CHECKING:
    from assistant.core import Assistant

__all__ = ["CALIBRATED", "RetrievalCase", "RetrievalReport", "calibrate", "evaluate_retrieval", "summarize"]

DEPTH = 10
# Abstention thresholds `calibrate` sets: the retrieval signal each one reads.
CALIBRATED = {
    "min_relevance": "best_score",
    "min_coverage": "coverage",
    "min_identifiers_known": "identifiers_known",
    "min_agreement": "agreement",
    "min_fused": "fused",
}


@dataclass
class RetrievalCase:
    question: str
    kind: str
    expected: str | None  # the source that answers it; None: the documents do not answer it
    answerable: bool
    sources: list[str]  # distinct sources found, best first
    rank: int | None  # 1-based rank of the expected source among them; None: not found
    signals: dict[str, Any]
    declined: bool
    reason: str
    latency_ms: float


@dataclass
class RetrievalReport:
    collection: str
    questions: int
    answerable: int
    metrics: dict[str, float | None]
    by_kind: dict[str, dict[str, float | None]]
    abstention: dict[str, float | int | None]
    latency_ms: dict[str, float]
    thresholds: dict[str, float]
    cases: list[RetrievalCase] = field(default_factory=list)
    calibrated: dict[str, float] | None = None

    @property
    def misses(self) -> list[RetrievalCase]:
        return [c for c in self.cases if c.answerable and c.rank != 1]

    @property
    def false_abstentions(self) -> list[RetrievalCase]:
        return [c for c in self.cases if c.answerable and c.declined]

    def to_dict(self) -> dict[str, Any]:
        headline = {k: {"value": v, "better": "higher"} for k, v in self.metrics.items() if v is not None}
        headline["abstention_recall"] = {"value": self.abstention.get("recall"), "better": "higher"}
        headline["false_abstention"] = {"value": self.abstention.get("false_abstention_rate"), "better": "lower"}
        headline["latency_p50_ms"] = {"value": self.latency_ms.get("p50"), "better": "lower"}
        return {"kind": "retrieval", **asdict(self), "headline": headline}


def run_cases(bot: Assistant, collection: str, items: list[QAItem]) -> Iterator[RetrievalCase]:
    """Search every question as a turn would; one case per question, as it is done."""
    retriever = bot.index.retriever(collection, bot.settings.top_k)
    policy = bot.pipeline.policy
    for item in items:
        started = time.perf_counter()
        retrieval = retriever.retrieve(what_is_asked(item.question), max(DEPTH, bot.settings.top_k))
        latency = (time.perf_counter() - started) * 1000
        # The router reads the top_k passages a turn would get; ranks look deeper.
        head = replace(retrieval, passages=retrieval.passages[: bot.settings.top_k])
        signals = policy.retrieval_signals(head)
        reason = policy.outside(signals)
        sources = list(dict.fromkeys(p.source for p in retrieval.passages))
        rank = sources.index(item.source) + 1 if item.source in sources else None
        yield RetrievalCase(
            question=item.question,
            kind=item.kind or ("answerable" if item.answers else "unanswerable"),
            expected=item.source,
            answerable=bool(item.answers),
            sources=sources[:DEPTH],
            rank=rank,
            signals=signals,
            declined=reason is not None,
            reason=reason or "",
            latency_ms=round(latency, 2),
        )


def _ranking(cases: list[RetrievalCase]) -> dict[str, float | None]:
    scored = [c for c in cases if c.answerable and c.expected]
    if not scored:
        return {"hit@1": None, "hit@5": None, "mrr": None, "ndcg@10": None}
    n = len(scored)
    return {
        "hit@1": round(sum(c.rank == 1 for c in scored) / n, 4),
        "hit@5": round(sum(c.rank is not None and c.rank <= 5 for c in scored) / n, 4),
        "mrr": round(sum(1 / c.rank for c in scored if c.rank) / n, 4),
        # One relevant source per question, so the ideal DCG is 1.
        "ndcg@10": round(sum(1 / math.log2(c.rank + 1) for c in scored if c.rank and c.rank <= 10) / n, 4),
    }


def _abstention(cases: list[RetrievalCase]) -> dict[str, float | int | None]:
    declined = [c for c in cases if c.declined]
    unanswerable = [c for c in cases if not c.answerable]
    answerable = [c for c in cases if c.answerable]
    right = sum(not c.answerable for c in declined)
    return {
        "declined": len(declined),
        "precision": round(right / len(declined), 4) if declined else None,
        "recall": round(right / len(unanswerable), 4) if unanswerable else None,
        "false_abstentions": sum(c.answerable for c in declined),
        "false_abstention_rate": round(sum(c.answerable for c in declined) / len(answerable), 4)
        if answerable
        else None,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def summarize(
    collection: str,
    cases: list[RetrievalCase],
    thresholds: dict[str, float],
    calibrated: dict[str, float] | None = None,
) -> RetrievalReport:
    kinds = sorted({c.kind for c in cases if c.answerable})
    latencies = [c.latency_ms for c in cases]
    return RetrievalReport(
        collection=collection,
        questions=len(cases),
        answerable=sum(c.answerable for c in cases),
        metrics=_ranking(cases),
        by_kind={k: _ranking([c for c in cases if c.kind == k]) for k in kinds},
        abstention=_abstention(cases),
        latency_ms={
            "p50": _percentile(latencies, 0.5),
            "p95": _percentile(latencies, 0.95),
            "mean": round(statistics.fmean(latencies), 2) if latencies else 0.0,
        },
        thresholds=thresholds,
        cases=cases,
        calibrated=calibrated,
    )


def _policy(thresholds: Thresholds, values: dict[str, float]) -> RoutePolicy:
    return RoutePolicy(replace(thresholds, **values), has_large=False)  # type: ignore[arg-type]


def calibrate(
    cases: list[RetrievalCase], current: Thresholds, *, max_false_abstention: float = 0.05
) -> dict[str, float]:
    """Abstention thresholds that decline the most unanswerable questions within the false-abstention budget."""
    answerable = sum(c.answerable for c in cases)
    allowed = math.floor(max_false_abstention * answerable + 1e-9)

    def score(values: dict[str, float]) -> tuple[int, int]:
        policy = _policy(current, values)
        declined = [policy.outside(c.signals) is not None for c in cases]
        wrong = sum(d and c.answerable for d, c in zip(declined, cases, strict=True))
        right = sum(d and not c.answerable for d, c in zip(declined, cases, strict=True))
        return right, wrong

    values = {name: 0.0 if name != "min_relevance" else -1.0 for name in CALIBRATED}
    best = score(values)
    while True:
        step: tuple[tuple[int, int], str, float] | None = None
        for name, signal in CALIBRATED.items():
            # Candidate thresholds sit just above each observed value, so each one declines one more group.
            observed = sorted({float(c.signals[signal]) for c in cases if c.signals.get(signal) is not None})
            for value in observed:
                threshold = round(value + 1e-4, 4)
                if threshold <= values[name]:
                    continue
                right, wrong = score({**values, name: threshold})
                if wrong > allowed or right <= best[0]:
                    continue
                # Most unanswerable declined; then fewest answerable declined; then the lowest threshold.
                key = (right, -wrong)
                if step is None or key > (step[0][0], -step[0][1]):
                    step = ((right, wrong), name, threshold)
        if step is None:
            break
        best, name, threshold = step
        values[name] = threshold
    return {name: max(value, 0.0) if name != "min_relevance" else value for name, value in values.items()}


def evaluate_retrieval(
    bot: Assistant,
    items: list[QAItem],
    collection: str,
    *,
    calibrate_thresholds: bool = False,
    max_false_abstention: float = 0.05,
    on_case: Callable[[RetrievalCase], None] | None = None,
) -> RetrievalReport:
    cases = []
    for case in run_cases(bot, collection, items):
        cases.append(case)
        if on_case:
            on_case(case)
    thresholds = bot.pipeline.policy.thresholds
    current = {name: float(getattr(thresholds, name)) for name in CALIBRATED}
    if not calibrate_thresholds:
        return summarize(collection, cases, current)
    chosen = calibrate(cases, thresholds, max_false_abstention=max_false_abstention)
    policy = _policy(thresholds, chosen)
    recalled = [
        replace(c, declined=(reason := policy.outside(c.signals)) is not None, reason=reason or "") for c in cases
    ]
    return summarize(collection, recalled, chosen, calibrated=chosen)
