"""`assistant eval routing`: how well the confidence tells right replies from wrong, and where to set it.

Every labelled question is asked as a real turn (`bot.ask`, its own new session), with
both operating points at 0 so each one is drafted and shown and carries every signal.
Labels come from the QA file (an answer string found in the reply; a reply to an
unanswerable question is wrong), from people's ratings of stored turns, and from
turns the large model answered, where the local draft (kept in the turn's signals)
is labelled by its agreement with the large model's answer. Reported: the AUROC of
the confidence and of each signal, the risk-coverage curve (accuracy of the replies
kept against the share kept), and the operating points: decline below the highest
confidence that declines at most `max_false_decline` of the answerable questions,
answer at the lowest confidence whose kept replies are `target_accuracy` right.
`--fit` refits the model on these labels (`fit`), so the labelled data grows with use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.evals.confidence import (
    CoveragePoint,
    LabeledTurn,
    auroc,
    collect,
    risk_coverage,
    threshold_for_accuracy,
    threshold_for_declines,
)
from assistant.evals.qa import QAItem
from chains.confidence import AFTER_DRAFT, ConfidenceModel, feature_values

if TYPE_CHECKING:
    from assistant.core import Assistant
    from memory.ratings import ReviewTurn, StoredRating

__all__ = [
    "OperatingPoint",
    "RoutingReport",
    "collect_labelled",
    "operating_point",
    "summarize",
    "turns_from_escalations",
    "turns_from_ratings",
]

AGREEMENT = 0.5  # token F1 of the local draft with the large model's answer that counts as agreeing


@dataclass(frozen=True)
class OperatingPoint:
    answer_confidence: float
    decline_confidence: float
    confident_share: float  # of the labelled turns shown without a low-confidence mark
    confident_accuracy: float | None
    declined_answerable: float | None


@dataclass
class RoutingReport:
    collection: str
    labelled: int
    sources: dict[str, int]  # labels per source: qa, ratings, large
    accuracy: float  # of the replies shown
    auroc: dict[str, float | None]  # the confidence, and each signal alone
    curve: list[CoveragePoint]
    operating_point: OperatingPoint | None
    fitted: bool
    turns: list[LabeledTurn] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)  # each turn's confidence after the draft
    # Answerable turns declined: shown as declined, or below the operating point's decline_confidence.
    wrongly_declined: list[int] = field(default_factory=list)  # indexes into turns

    @property
    def wrong(self) -> list[int]:
        """Turns whose reply was shown and is not right (any reply to an unanswerable question)."""
        return [i for i, t in enumerate(self.turns) if t.shown and not t.correct]

    def to_dict(self) -> dict[str, Any]:
        headline = {f"auroc.{k}": {"value": v, "better": "higher"} for k, v in self.auroc.items() if v is not None}
        headline["accuracy"] = {"value": self.accuracy, "better": "higher"}
        return {"kind": "routing", **asdict(self), "headline": headline}


def collect_labelled(
    bot: Assistant,
    items: Sequence[QAItem],
    collection: str,
    *,
    on_turn: Callable[[int, LabeledTurn], None] | None = None,
) -> list[LabeledTurn]:
    """QA questions asked as turns with nothing declined or escalated, so each carries every signal."""
    wide_open = bot.with_settings(answer_confidence=0.0, decline_confidence=0.0)
    return collect(wide_open, items, collection, group="qa", route="local", on_turn=on_turn)


def turns_from_ratings(turns: list[ReviewTurn], ratings: list[StoredRating]) -> list[LabeledTurn]:
    """People's ratings as labels: a turn's majority verdict ("correct" against the rest; a tie is not correct)."""
    by_turn: dict[int, list[str]] = {}
    for rating in ratings:
        by_turn.setdefault(rating.turn_id, []).append(rating.rating)
    labelled = []
    for turn in turns:
        verdicts = by_turn.get(turn.turn_id)
        if not verdicts or turn.route != "local" or turn.signals.get("best_score") is None:
            continue
        right = verdicts.count("correct") * 2 > len(verdicts)
        labelled.append(_stored(turn, right, "ratings"))
    return labelled


def turns_from_escalations(turns: list[ReviewTurn]) -> list[LabeledTurn]:
    """Turns the large model answered after a local draft: the draft is right when it agrees with the answer."""
    labelled = []
    for turn in turns:
        draft = turn.signals.get("local_draft")
        if turn.route != "large" or not isinstance(draft, str) or turn.signals.get("sentences") is None:
            continue
        labelled.append(_stored(turn, bool(draft) and token_f1(draft, turn.answer) >= AGREEMENT, "large"))
    return labelled


def _stored(turn: ReviewTurn, right: bool, group: str) -> LabeledTurn:
    return LabeledTurn(
        question=turn.question,
        kind=group,
        answerable=True,
        answer=turn.answer,
        correct=right,
        own_correct=right,
        route=turn.route,
        low_confidence=False,
        signals=dict(turn.signals),
        seconds=0.0,
        group=group,
    )


def token_f1(a: str, b: str) -> float:
    from retrievers.words import content_words

    left, right = content_words(a), content_words(b)
    common = sum(min(left.count(w), right.count(w)) for w in set(left))
    if not common:
        return 0.0
    precision, recall = common / len(left), common / len(right)
    return 2 * precision * recall / (precision + recall)


def operating_point(
    model: ConfidenceModel, turns: Sequence[LabeledTurn], *, target_accuracy: float, max_false_decline: float
) -> OperatingPoint:
    lowest = [min(model.before(t.signals), model.after(t.signals)) for t in turns]
    decline = threshold_for_declines([t.answerable for t in turns], lowest, max_false_decline)
    kept = [(t, model.after(t.signals)) for t, low in zip(turns, lowest, strict=True) if low >= decline]
    answer = max(decline, threshold_for_accuracy([t.correct for t, _ in kept], [p for _, p in kept], target_accuracy))
    confident = [t for t, p in kept if p >= answer]
    answerable = [low < decline for t, low in zip(turns, lowest, strict=True) if t.answerable]
    return OperatingPoint(
        answer_confidence=round(answer, 4),
        decline_confidence=round(decline, 4),
        confident_share=round(len(confident) / len(turns), 4) if turns else 0.0,
        confident_accuracy=round(sum(t.correct for t in confident) / len(confident), 4) if confident else None,
        declined_answerable=round(sum(answerable) / len(answerable), 4) if answerable else None,
    )


def summarize(
    turns: list[LabeledTurn],
    model: ConfidenceModel,
    *,
    collection: str,
    fitted: bool = False,
    target_accuracy: float = 0.9,
    max_false_decline: float = 0.05,
) -> RoutingReport:
    if not turns:
        raise ValueError("no labelled turns")
    labels = [t.correct for t in turns]
    scores = [model.after(t.signals) for t in turns]
    aurocs: dict[str, float | None] = {"confidence": auroc(labels, scores)}
    for name in AFTER_DRAFT:
        values = [feature_values(t.signals, (name,))[0] for t in turns]
        if all(v is not None for v in values):
            aurocs[name] = auroc(labels, [float(v) for v in values])  # type: ignore[arg-type]
    both = len(set(labels)) == 2
    point = (
        operating_point(model, turns, target_accuracy=target_accuracy, max_false_decline=max_false_decline)
        if both
        else None
    )
    lowest = [min(model.before(t.signals), model.after(t.signals)) for t in turns]
    declined = [
        i
        for i, t in enumerate(turns)
        if t.answerable and (not t.shown or (point is not None and lowest[i] < point.decline_confidence))
    ]
    return RoutingReport(
        collection=collection,
        labelled=len(turns),
        sources={g: sum(t.group == g for t in turns) for g in dict.fromkeys(t.group for t in turns)},
        accuracy=round(sum(labels) / len(labels), 4),
        auroc=aurocs,
        curve=risk_coverage(labels, scores),
        operating_point=point,
        fitted=fitted,
        turns=turns,
        confidences=[round(s, 4) for s in scores],
        wrongly_declined=declined,
    )
