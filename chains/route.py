"""The one routing decision: show the local answer, ask the large model, or decline.

Decided from one calibrated probability that the reply shown will be right
(chains.confidence), read twice. After retrieval, from the retrieval signals alone:
below `decline_confidence` the documents do not cover the question, so it is declined
(or, with a large model, sent to it) and no local draft is made. After the local draft,
from every signal: at or above `answer_confidence` the answer is shown; below it the
large model is asked when there is one, otherwise the answer is shown marked low
confidence, or declined below `decline_confidence` when nothing was shown yet.
Two rules stand outside the probability: context that does not fit the local model
goes to the large model, and privacy comes first: a local-only collection is never
escalated, whatever the signals or the caller's `route` say.

Every reason names the confidence and the signal that weighed most, as it is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, Literal

from assistant.errors import InvalidInputError
from assistant.settings import RoutingSettings
from chains.confidence import DESCRIPTIONS, ConfidenceModel
from chains.reply import Route
from chains.verify import Verified
from retrievers.hybrid import Retrieval
from retrievers.keywords import query_terms
from retrievers.passage import Passage

__all__ = [
    "Decision",
    "RequestedRoute",
    "RoutePolicy",
    "check_requested_route",
    "draft_signals",
]

RequestedRoute = Literal["auto", "local", "large"]
REQUESTED_ROUTES: tuple[RequestedRoute, ...] = ("auto", "local", "large")
# A passage that gives the assistant orders was written by someone who wanted to steer the
# answer; what is left of it is trusted less. Halving puts any answer below answer_confidence.
INSTRUCTIONS_FACTOR = 0.5


@dataclass(frozen=True)
class Decision:
    """`route` "draft": generate the local draft, then decide again."""

    route: Route | Literal["draft"]
    reason: str
    low_confidence: bool = False
    note: str = ""  # said in the answer when the large model was wanted but not used

    def declined(self, problem: str, *, has_draft: bool, note: str) -> Decision:
        """This escalation could not happen (budget, failure): the local answer, or abstention."""
        if has_draft:
            return Decision("local", f"{self.reason}, but {problem}; answered locally", True, note)
        return Decision("abstain", f"{self.reason}, but {problem}; nothing relevant to answer from locally", True, note)

    def shown_anyway(self) -> Decision:
        """Backed sentences were already streamed: they stay, marked low confidence, instead of a refusal."""
        return Decision(
            "local",
            self.reason.replace("the assistant declines", "the backed sentences shown are kept"),
            True,
            self.note,
        )


def check_requested_route(route: str) -> RequestedRoute:
    if route not in REQUESTED_ROUTES:
        raise InvalidInputError("route", f"must be one of {', '.join(REQUESTED_ROUTES)}, got {route!r}")
    return route


def draft_signals(
    logprobs: list[dict[str, Any]], verified: Verified, evidence: list[str], *, language: str = "english"
) -> dict[str, Any]:
    """Confidence of a local draft: token log-probabilities, what the sentence check kept, overlap with the evidence."""
    values = [float(item["logprob"]) for item in logprobs if item.get("logprob") is not None]
    shown = set(query_terms(verified.text, language))
    quoted = {t for sentence in evidence for t in query_terms(sentence, language)}
    return {
        "mean_logprob": round(statistics.fmean(values), 4) if values else None,
        "min_logprob": round(min(values), 4) if values else None,
        "answer_evidence_overlap": round(len(shown & quoted) / len(shown), 4) if shown else 0.0,
        **verified.signals(),
    }


@dataclass(frozen=True)
class RoutePolicy:
    routing: RoutingSettings
    has_large: bool
    confidence: ConfidenceModel

    @property
    def min_relevance(self) -> float:
        return self.routing.min_relevance

    def relevant(self, passages: list[Passage]) -> list[Passage]:
        """The passages worth a prompt: close in meaning, or among the strongest keyword matches."""
        return [
            p
            for p in passages
            if p.score >= self.routing.min_relevance or (p.keyword_rank is not None and p.keyword_rank <= 3)
        ]

    def retrieval_signals(self, retrieval: Retrieval) -> dict[str, float | int | None]:
        scores = sorted((p.score for p in retrieval.passages), reverse=True)
        return {
            "best_score": round(scores[0], 4) if scores else None,
            "score_gap": round(scores[0] - scores[1], 4) if len(scores) > 1 else None,
            "relevant_passages": len(self.relevant(retrieval.passages)),
            **retrieval.signals(),
        }

    def score(self, signals: dict[str, Any], *, drafted: bool) -> float:
        """The probability that the reply shown will be right, stored in the signals as `confidence`."""
        if signals.get("best_score") is None:
            value = 0.0
        elif drafted:
            value = self.confidence.after(signals)
        else:
            value = self.confidence.before(signals)
        if signals.get("instructions_removed"):
            value = round(value * INSTRUCTIONS_FACTOR, 4)
        signals["confidence_before_draft" if not drafted else "confidence"] = value
        if not drafted:
            signals["confidence"] = value
        return value

    def explain(self, signals: dict[str, Any], *, drafted: bool) -> str:
        """'confidence 0.34; weighed most: <signal> (lowering it)'."""
        value = signals.get("confidence", 0.0)
        if signals.get("best_score") is None:
            return f"confidence {value:.2f}; no passage was found"
        stage = self.confidence.after_draft if drafted else self.confidence.before_draft
        name, contribution = stage.weightiest(signals)
        shown = signals.get(name)
        figure = f" {shown:.2f}" if isinstance(shown, float) else f" {shown}" if shown is not None else ""
        direction = "raising it" if contribution > 0 else "lowering it"
        removed = signals.get("instructions_removed") or 0
        planted = (
            f"; {removed} line{'s' if removed > 1 else ''} of the passages addressed the assistant and "
            f"{'were' if removed > 1 else 'was'} left out (confidence × {INSTRUCTIONS_FACTOR})"
            if removed
            else ""
        )
        return f"confidence {value:.2f}; weighed most: {DESCRIPTIONS.get(name, name)}{figure} ({direction}){planted}"

    def outside(self, signals: dict[str, Any]) -> str | None:
        """Why retrieval says the documents do not answer the question; None when they may."""
        value = self.score(signals, drafted=False)
        best = signals.get("best_score")
        if best is None:
            return "no passage was found"
        if signals.get("relevant_passages") == 0:
            return (
                f"no relevant passage (best passage scored {best:.2f}, below the relevance threshold "
                f"{self.routing.min_relevance:.2f}, and none among the best keyword matches; "
                f"{self.explain(signals, drafted=False)})"
            )
        if value < self.routing.decline_confidence:
            return (
                f"the documents do not seem to cover the question ({self.explain(signals, drafted=False)}; "
                f"below {self.routing.decline_confidence:.2f})"
            )
        return None

    def may_escalate(self, requested: RequestedRoute, local_only: bool) -> bool:
        return self.has_large and not local_only and requested != "local"

    def decide(
        self,
        signals: dict[str, Any],
        *,
        requested: RequestedRoute = "auto",
        local_only: bool = False,
        collection: str = "",
        drafted: bool = False,
    ) -> Decision:
        t = self.routing
        can_escalate = self.may_escalate(requested, local_only)
        note = self._private_note(local_only, collection)
        asked = "route='local' was requested; " if requested == "local" else ""
        private = f"collection '{collection}' is local-only; " if local_only else ""
        blocked = (
            f"collection '{collection}' is local-only, so nothing was sent to a large model"
            if local_only
            else "no large model is configured"
        )
        if requested == "large":
            if can_escalate:
                return Decision("large", "route='large' was requested; asked the large model")
            if not drafted:
                outside = self.outside(signals)
                if outside:
                    return Decision(
                        "abstain",
                        f"route='large' was requested, but {blocked}; {outside}; the assistant declines",
                        note=note,
                    )
                return Decision("draft", "")
            self.score(signals, drafted=True)
            return Decision(
                "local",
                f"route='large' was requested, but {blocked}; the local answer is kept "
                f"({self.explain(signals, drafted=True)})",
                True,
                note,
            )

        if not drafted:
            outside = self.outside(signals)
            if outside:
                if can_escalate:
                    return Decision("large", f"{outside}; asked the large model")
                tail = "" if local_only or not self.has_large or requested == "local" else f"{blocked}; "
                return Decision("abstain", f"{asked}{private}{tail}{outside}; the assistant declines", note=note)
            fit = signals.get("context_fit")
            if fit is not None and fit < t.min_context_fit and can_escalate:
                return Decision(
                    "large",
                    f"only {fit:.0%} of the relevant passages fit the local model's context "
                    f"(threshold {t.min_context_fit:.0%}); asked the large model",
                )
            return Decision("draft", "")

        value = self.score(signals, drafted=True)
        why = self.explain(signals, drafted=True)
        if value >= t.answer_confidence:
            return Decision(
                "local",
                f"{asked}{private}the local answer is shown ({why}, at or above {t.answer_confidence:.2f})",
                note=note,
            )
        if can_escalate:
            return Decision(
                "large",
                f"the local answer is not confident enough ({why}, below "
                f"{t.answer_confidence:.2f}); asked the large model",
            )
        if value < t.decline_confidence:
            return Decision(
                "abstain",
                f"{asked}{private}the local answer is too unsure to show ({why}, below "
                f"{t.decline_confidence:.2f}); the assistant declines",
                True,
                note,
            )
        limit = "" if requested == "local" or local_only else f"{blocked}; "
        return Decision(
            "local",
            f"{asked}{private}{limit}the local answer is shown marked low confidence ({why}, "
            f"below {t.answer_confidence:.2f})",
            True,
            note,
        )

    def _private_note(self, local_only: bool, collection: str) -> str:
        """Said in the answer only where a large model could otherwise have been asked."""
        return f"Answered locally: collection '{collection}' is local-only." if local_only and self.has_large else ""
