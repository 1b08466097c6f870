"""The one routing decision: answer locally, escalate to the large model, or abstain.

Decided from evidence, in two looks. After retrieval: do the documents answer the
question at all (a relevant passage, the question's words and names found, the
keyword and meaning lists agreeing), does the best passage stand out, does what is
needed fit the local model's context? A question outside the documents is declined,
or, with a large model, sent to it; either way no local draft is made. Otherwise the local model
drafts, and the draft's token confidence, its support in the passages and whether it
declined are checked. Every threshold comes from settings (a signal is "weak" when
below its threshold); every decision carries its reason in words.

Privacy comes first: a local-only collection is never escalated, whatever the
signals or the caller's `route` say.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from typing import Any, Literal

from assistant.errors import InvalidInputError
from chains.reply import Route
from retrievers.hybrid import Retrieval
from retrievers.passage import Passage
from retrievers.words import content_words

__all__ = [
    "DRAFT_SIGNALS",
    "Decision",
    "RequestedRoute",
    "RoutePolicy",
    "Thresholds",
    "check_requested_route",
    "draft_signals",
]

RequestedRoute = Literal["auto", "local", "large"]
REQUESTED_ROUTES: tuple[RequestedRoute, ...] = ("auto", "local", "large")

# Signals measured on the local draft; each is "higher means more likely right".
DRAFT_SIGNALS = ("mean_logprob", "min_logprob", "support")

_DECLINED = re.compile(
    r"\b(?:(?:do|does|did)\s*(?:not|n't)\s+(?:contain|mention|say|provide|cover|include|specify|state)"
    r"|not\s+(?:mentioned|provided|specified|stated|covered|found|available)"
    r"|no\s+(?:information|mention)|cannot\s+(?:find|answer|determine)|can't\s+(?:find|answer|determine)"
    r"|i(?:'m| am)\s+(?:sorry|not sure|unable))",
    re.IGNORECASE,
)


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


@dataclass(frozen=True)
class Thresholds:
    min_relevance: float
    min_coverage: float = 0.0
    min_identifiers_known: float = 0.0
    min_agreement: float = 0.0
    min_fused: float = 0.0
    min_score_gap: float = 0.0
    min_context_fit: float = 0.0
    min_mean_logprob: float = float("-inf")
    min_min_logprob: float = float("-inf")
    min_support: float = 0.0
    escalate_declined: bool = True


def check_requested_route(route: str) -> RequestedRoute:
    if route not in REQUESTED_ROUTES:
        raise InvalidInputError("route", f"must be one of {', '.join(REQUESTED_ROUTES)}, got {route!r}")
    return route


def draft_signals(text: str, logprobs: list[dict[str, Any]], passages: list[Passage], question: str) -> dict[str, Any]:
    """Confidence of a local draft: token log-probabilities, support in the passages, declining."""
    values = [float(item["logprob"]) for item in logprobs if item.get("logprob") is not None]
    return {
        "mean_logprob": round(statistics.fmean(values), 4) if values else None,
        "min_logprob": round(min(values), 4) if values else None,
        "support": support(text, passages, question),
        "declined": bool(_DECLINED.search(text)),
    }


def support(text: str, passages: list[Passage], question: str) -> float:
    """Share of what the draft adds to the question (its new content words) found in the passages.

    A draft that only repeats the question adds nothing and scores 0."""
    asked = {_stem(w) for w in content_words(question)}
    added = {_stem(w) for w in content_words(text)} - asked
    if not added:
        return 0.0
    found = {_stem(w) for p in passages for w in content_words(f"{p.title} {p.text}")}
    return round(len(added & found) / len(added), 4)


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@dataclass(frozen=True)
class RoutePolicy:
    thresholds: Thresholds
    has_large: bool

    @property
    def min_relevance(self) -> float:
        return self.thresholds.min_relevance

    def relevant(self, passages: list[Passage]) -> list[Passage]:
        """The passages worth a prompt: close in meaning, or among the strongest keyword matches."""
        return [
            p
            for p in passages
            if p.score >= self.thresholds.min_relevance or (p.keyword_rank is not None and p.keyword_rank <= 3)
        ]

    def retrieval_signals(self, retrieval: Retrieval) -> dict[str, float | int | None]:
        scores = sorted((p.score for p in retrieval.passages), reverse=True)
        return {
            "best_score": round(scores[0], 4) if scores else None,
            "score_gap": round(scores[0] - scores[1], 4) if len(scores) > 1 else None,
            "relevant_passages": len(self.relevant(retrieval.passages)),
            **retrieval.signals(),
        }

    def outside(self, signals: dict[str, Any]) -> str | None:
        """Why retrieval says the documents do not answer the question; None when they may."""
        t = self.thresholds
        best = signals.get("best_score")
        # Chunks holding every code or name the question asks about (E11, work_mem) answer it
        # however short the question, whose meaning alone then matches little.
        named = signals.get("identifiers_known") == 1
        if best is None or (best < t.min_relevance and not named):
            scored = "no passages" if best is None else f"best passage scored {best:.2f}"
            return f"no relevant passage ({scored}, below the relevance threshold {t.min_relevance:.2f})"
        checks = (
            ("identifiers_known", t.min_identifiers_known, "of the names it asks about are in the documents"),
            ("coverage", t.min_coverage, "of its words are in the best passages"),
            ("agreement", t.min_agreement, "agreement between the keyword and meaning searches"),
            ("fused", t.min_fused, "fused retrieval score"),
        )
        for name, threshold, what in checks:
            value = signals.get(name)
            if value is not None and value < threshold:
                return (
                    f"the documents do not seem to cover the question (only {value:.0%} {what}, below {threshold:.0%})"
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
        problems = self.problems(signals, drafted=drafted)
        nothing_relevant = self.outside(signals) is not None
        if requested == "large":
            wanted, why = True, "route='large' was requested"
        else:
            wanted, why = requested == "auto" and bool(problems), "; ".join(problems)
        if not wanted:
            return self._stay_local(signals, problems, requested, local_only, collection, drafted, nothing_relevant)
        if self.may_escalate(requested, local_only):
            return Decision("large", f"{why}; asked the large model")
        blocked = (
            f"collection '{collection}' is local-only, so nothing was sent to a large model"
            if local_only
            else "no large model is configured"
        )
        note = self._private_note(local_only, collection)
        if nothing_relevant:
            return Decision("abstain", f"{why}, but {blocked}; the assistant declines", note=note)
        if not drafted:
            return Decision("draft", "")
        return Decision("local", f"{why}, but {blocked}; the local answer is kept", low_confidence=True, note=note)

    def problems(self, signals: dict[str, Any], *, drafted: bool) -> list[str]:
        """Why the local model may not answer well, in words; empty when nothing is wrong."""
        t = self.thresholds
        found: list[str] = []
        outside = self.outside(signals)
        if outside:
            return [outside]
        gap = signals.get("score_gap")
        if gap is not None and gap < t.min_score_gap:
            found.append(f"no passage stands out (score gap {gap:.3f} < {t.min_score_gap:.3f})")
        fit = signals.get("context_fit")
        if fit is not None and fit < t.min_context_fit:
            found.append(
                f"only {fit:.0%} of the relevant passages fit the local model's context "
                f"(threshold {t.min_context_fit:.0%})"
            )
        if not drafted:
            return found
        mean, low, backed = signals.get("mean_logprob"), signals.get("min_logprob"), signals.get("support")
        if signals.get("declined") and t.escalate_declined:
            found.append("the local model said the documents do not answer")
        if mean is not None and mean < t.min_mean_logprob:
            found.append(f"the local answer had low confidence (mean logprob {mean:.2f} < {t.min_mean_logprob:.2f})")
        if low is not None and low < t.min_min_logprob:
            found.append(f"the local answer has an unsure token (min logprob {low:.2f} < {t.min_min_logprob:.2f})")
        if backed is not None and backed < t.min_support:
            found.append(
                f"the local answer is weakly supported by the passages ({backed:.0%} of its new words found, "
                f"threshold {t.min_support:.0%})"
            )
        return found

    def _private_note(self, local_only: bool, collection: str) -> str:
        """Said in the answer only where a large model could otherwise have been asked."""
        return f"Answered locally: collection '{collection}' is local-only." if local_only and self.has_large else ""

    def _stay_local(
        self,
        signals: dict[str, Any],
        problems: list[str],
        requested: RequestedRoute,
        local_only: bool,
        collection: str,
        drafted: bool,
        nothing_relevant: bool,
    ) -> Decision:
        asked = "route='local' was requested; " if requested == "local" else ""
        private = f"collection '{collection}' is local-only; " if local_only else ""
        note = self._private_note(local_only, collection)
        if nothing_relevant:
            return Decision("abstain", f"{asked}{private}{problems[0]}; the assistant declines", note=note)
        if not drafted:
            return Decision("draft", "")
        if problems:
            return Decision("local", f"{asked}{private}{'; '.join(problems)}; the local answer is kept", True, note)
        shown = signals.get("mean_logprob")
        confidence = "n/a" if shown is None else f"{shown:.2f}"
        backed = signals.get("support")
        supported = "" if backed is None else f", {backed:.0%} of its new words in the passages"
        reason = (
            f"{asked}{private}relevant passages found (best {signals.get('best_score', 0):.2f}) and the "
            f"local answer looks sound (mean logprob {confidence}{supported})"
        )
        return Decision("local", reason, note=note)
