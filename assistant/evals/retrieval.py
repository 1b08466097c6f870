"""`assistant eval retrieval`: does search put the right page first, and decline what the documents do not say?

Every labelled question goes through the first half of a turn, exactly as `ask` runs
it (`Assistant.prepare`: condense, search, evidence; nothing generated or stored), and
the router's retrieval-level decision is read from it with the thresholds in settings.
Ranks count distinct sources (files) of the same search taken deeper, so a page found
by three chunks counts once. Reported: hit@1, hit@5, MRR and nDCG@10 over
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

from assistant.evals.confidence import threshold_for_declines
from assistant.evals.qa import QAItem

if TYPE_CHECKING:
    from assistant.core import Assistant

__all__ = ["CALIBRATED", "RetrievalCase", "RetrievalReport", "calibrate", "evaluate_retrieval", "summarize"]

DEPTH = 10
# The setting `calibrate` sets, and the signal it reads: the confidence before any draft.
CALIBRATED = {"decline_confidence": "confidence_before_draft"}


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
    """Search every question as a turn would; one case per question, as it is done.

    Each question goes through the turn's own first half (`Assistant.prepare`: recall,
    condense, search, evidence, confidence before the draft), which gives the decline
    decision and its signals; the ranks come from a search for the very query the turn
    searched (`Prepared.query`) on the collection's retriever, taken `DEPTH` deep."""
    retriever = bot.retriever(collection)
    depth = max(DEPTH, bot.settings.top_k)
    for number, item in enumerate(items, start=1):
        session = f"eval-retrieval-{number}"
        prepared = bot.prepare(item.question, user_id="eval", session_id=session, collection=collection)
        started = time.perf_counter()
        passages = retriever.search(prepared.query, depth)
        latency = (time.perf_counter() - started) * 1000
        sources = list(dict.fromkeys(p.source for p in passages))
        rank = sources.index(item.source) + 1 if item.source in sources else None
        yield RetrievalCase(
            question=item.question,
            kind=item.kind or ("answerable" if item.answers else "unanswerable"),
            expected=item.source,
            answerable=bool(item.answers),
            sources=sources[:DEPTH],
            rank=rank,
            signals=prepared.signals,
            declined=prepared.outside is not None,
            reason=prepared.outside or "",
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


def calibrate(cases: list[RetrievalCase], *, max_false_abstention: float = 0.05) -> dict[str, float]:
    """The decline threshold that declines the most unanswerable questions within the false-abstention budget."""
    scores = [float(c.signals.get("confidence_before_draft") or 0.0) for c in cases]
    return {
        "decline_confidence": max(
            0.0, threshold_for_declines([c.answerable for c in cases], scores, max_false_abstention)
        )
    }


def _declined(case: RetrievalCase, threshold: float) -> RetrievalCase:
    value = float(case.signals.get("confidence_before_draft") or 0.0)
    declined = case.signals.get("best_score") is None or value < threshold
    reason = f"confidence {value:.2f} before drafting, below {threshold:.2f}" if declined else ""
    return replace(case, declined=declined, reason=reason)


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
    current = {"decline_confidence": bot.settings.decline_confidence}
    if not calibrate_thresholds:
        return summarize(collection, cases, current)
    chosen = calibrate(cases, max_false_abstention=max_false_abstention)
    recalled = [_declined(c, chosen["decline_confidence"]) for c in cases]
    return summarize(collection, recalled, chosen, calibrated=chosen)
