"""The routing decision: answer locally, escalate to the large model, or abstain.

Decided from evidence and recorded with a reason in words: before generation from
retrieval relevance (is any passage about the question?), after it from the local
answer's token confidence. Thresholds come from settings; later policies add
signals here, in one place, not in a second decision point elsewhere.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from chains.reply import Route
from retrievers.passage import Passage

__all__ = ["Decision", "RoutePolicy", "confidence_signals"]


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: str
    low_confidence: bool = False


def confidence_signals(logprobs: list[dict[str, Any]]) -> dict[str, float | None]:
    values = [float(item["logprob"]) for item in logprobs if item.get("logprob") is not None]
    if not values:
        return {"mean_logprob": None, "min_logprob": None}
    return {"mean_logprob": round(statistics.fmean(values), 4), "min_logprob": round(min(values), 4)}


@dataclass(frozen=True)
class RoutePolicy:
    min_relevance: float
    min_mean_logprob: float
    has_fallback: bool

    def retrieval_signals(self, passages: list[Passage]) -> dict[str, float | int | None]:
        scores = [p.score for p in passages]
        best = max(scores, default=None)
        second = sorted(scores, reverse=True)[1] if len(scores) > 1 else None
        return {
            "best_score": None if best is None else round(best, 4),
            "score_gap": None if best is None or second is None else round(best - second, 4),
            "relevant_passages": sum(s >= self.min_relevance for s in scores),
        }

    def before_generation(self, passages: list[Passage]) -> Decision | None:
        """A decision when retrieval already settles it, else None (generate locally)."""
        best = max((p.score for p in passages), default=None)
        if best is not None and best >= self.min_relevance:
            return None
        found = "no passages" if best is None else f"best passage scored {best:.2f}"
        why = f"no relevant passage ({found}, below the relevance threshold {self.min_relevance:.2f})"
        if self.has_fallback:
            return Decision("fallback", f"{why}; asked the large model")
        return Decision("abstain", f"{why}; no large model is configured, so the assistant declines")

    def after_generation(self, signals: dict[str, Any]) -> Decision:
        mean = signals.get("mean_logprob")
        if mean is None or mean >= self.min_mean_logprob:
            shown = "n/a" if mean is None else f"{mean:.2f}"
            return Decision(
                "local", f"relevant passages found and the local model was confident (mean logprob {shown})"
            )
        why = f"the local answer had low confidence (mean logprob {mean:.2f} < {self.min_mean_logprob:.2f})"
        if self.has_fallback:
            return Decision("fallback", f"{why}; asked the large model")
        kept = f"{why}; no large model is configured, so the local answer is kept"
        return Decision("local", kept, low_confidence=True)
