"""Labelled turns, the fitted confidence, and how the field measures it.

A labelled turn is a real turn (`bot.ask`, the path users get) with its signals and
whether the reply shown was right. Labels come from QA files (an answer string found
in the reply; any reply to an unanswerable question is wrong), from people's ratings
(`turn_ratings`), and from turns the large model answered (whether the local draft
agreed with it). `fit` turns them into a `ConfidenceModel`; `risk_coverage`, `auroc`
and the operating points are what `eval routing`, `eval answers` and the benchmark
report.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.evals.qa import QAItem, is_correct
from chains.citing import EXTRACTIVE_LEAD
from chains.confidence import AFTER_DRAFT, BEFORE_DRAFT, ConfidenceModel, LogisticModel, feature_values
from chains.route import RequestedRoute
from chains.verify import exact_tokens

if TYPE_CHECKING:
    from assistant.core import Assistant
    from chains.reply import Reply

__all__ = [
    "LabeledTurn",
    "auroc",
    "collect",
    "fit",
    "label_reply",
    "own_words",
    "risk_coverage",
    "unbacked_claims",
]


_QUOTED = re.compile(r"^> “.*$", re.MULTILINE)
_NOTE = re.compile(r"\n\n\([^\n]*\)\s*$")


def own_words(answer: str) -> str:
    """The answer without its quoted evidence lines and closing note ("" when it is only the evidence)."""
    text = _NOTE.sub("", _QUOTED.sub("", answer)).strip()
    return "" if text == EXTRACTIVE_LEAD else text


def unbacked_claims(text: str, cited: Iterable[str]) -> list[str]:
    """Numbers and identifiers the text states that no cited passage holds."""
    corpus = " ".join(cited).lower()
    missing = []
    for token in exact_tokens(text):
        if not any(ch.isdigit() for ch in token) and "_" not in token:
            continue  # names and acronyms: only numbers, codes and identifiers are counted here
        if token.lower() not in corpus:
            missing.append(token)
    return missing


@dataclass
class LabeledTurn:
    question: str
    kind: str
    answerable: bool
    answer: str
    correct: bool  # the whole reply shown holds an expected answer (False for any reply to an unanswerable one)
    own_correct: bool  # the model's own words alone do
    route: str
    low_confidence: bool
    signals: dict[str, Any]
    seconds: float
    group: str = ""  # corpus or collection: what cross-validation holds out together
    unbacked: list[str] = field(default_factory=list)  # numbers/identifiers of its own words not in the cited text
    sources: list[str] = field(default_factory=list)  # chunk ids cited
    expected: list[str] = field(default_factory=list)  # the QA file's answers, when labelled from one

    @property
    def shown(self) -> bool:
        return self.route != "abstain"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def label_reply(item: QAItem, reply: Reply, seconds: float, group: str, cited: Sequence[str] = ()) -> LabeledTurn:
    words = own_words(reply.answer) if reply.route != "abstain" else ""
    shown = reply.route != "abstain"
    return LabeledTurn(
        question=item.question,
        kind=item.kind or ("answerable" if item.answers else "unanswerable"),
        answerable=bool(item.answers),
        answer=reply.answer,
        correct=shown and bool(item.answers) and is_correct(reply.answer, item.answers),
        own_correct=bool(words) and bool(item.answers) and is_correct(words, item.answers),
        route=reply.route,
        low_confidence=reply.low_confidence,
        signals=dict(reply.signals),
        seconds=round(seconds, 3),
        group=group,
        unbacked=unbacked_claims(words, cited) if words and reply.route == "local" else [],
        sources=[s.chunk_id for s in reply.sources],
        expected=list(item.answers),
    )


def collect(
    bot: Assistant,
    items: Sequence[QAItem],
    collection: str,
    *,
    group: str = "",
    route: RequestedRoute = "local",
    cited_texts: Callable[[list[str]], list[str]] | None = None,
    on_turn: Callable[[int, LabeledTurn], None] | None = None,
) -> list[LabeledTurn]:
    """Ask every question as its own new session; label what was shown."""
    turns = []
    for number, item in enumerate(items, start=1):
        started = time.perf_counter()
        reply = bot.ask(
            item.question,
            user_id="eval",
            session_id=f"eval-{uuid.uuid4().hex[:12]}",
            collection=collection,
            route=route,
        )
        seconds = time.perf_counter() - started
        cited = cited_texts([s.chunk_id for s in reply.sources]) if cited_texts else [s.snippet for s in reply.sources]
        turn = label_reply(item, reply, seconds, group or collection, cited)
        turns.append(turn)
        if on_turn:
            on_turn(number, turn)
    return turns


# Fitting -----------------------------------------------------------------------------


def _matrix(turns: Sequence[LabeledTurn], names: Sequence[str]) -> tuple[list[list[float]], list[float]]:
    """Rows of feature values, missing ones filled with the column mean (returned as the fill)."""
    raw = [feature_values(t.signals, names) for t in turns]
    fill = []
    for column in range(len(names)):
        present = [r[column] for r in raw if r[column] is not None and math.isfinite(r[column])]  # type: ignore[arg-type]
        fill.append(sum(present) / len(present) if present else 0.0)  # type: ignore[arg-type]
    rows = [[v if v is not None and math.isfinite(v) else fill[i] for i, v in enumerate(r)] for r in raw]
    return rows, fill


def _fit_stage(turns: Sequence[LabeledTurn], names: Sequence[str], c: float) -> LogisticModel:
    from sklearn.linear_model import LogisticRegression

    rows, fill = _matrix(turns, names)
    labels = [int(t.correct) for t in turns]
    if len(set(labels)) < 2:
        raise ValueError("fitting needs both right and wrong replies among the labelled turns")
    n = len(rows)
    mean = [sum(r[i] for r in rows) / n for i in range(len(names))]
    scale = [math.sqrt(sum((r[i] - mean[i]) ** 2 for r in rows) / n) or 1.0 for i in range(len(names))]
    standard = [[(r[i] - mean[i]) / scale[i] for i in range(len(names))] for r in rows]
    model = LogisticRegression(C=c, max_iter=2000).fit(standard, labels)
    return LogisticModel(
        tuple(names),
        tuple(round(v, 6) for v in fill),
        tuple(round(v, 6) for v in mean),
        tuple(round(v, 6) for v in scale),
        tuple(round(float(v), 6) for v in model.coef_[0]),
        round(float(model.intercept_[0]), 6),
    )


def fit(turns: Sequence[LabeledTurn], *, c: float = 0.5, fitted_on: str = "") -> ConfidenceModel:
    """Both stages fitted on the same labels: before the draft on retrieval signals, after on all of them.

    Turns the router declined before drafting have no draft signals; they still teach the
    before-draft stage, and the after-draft stage sees them with the draft signals filled in."""
    return ConfidenceModel(
        before_draft=_fit_stage(turns, BEFORE_DRAFT, c),
        after_draft=_fit_stage(turns, AFTER_DRAFT, c),
        fitted_on=fitted_on or f"{len(turns)} labelled turns",
    )


# Measures ----------------------------------------------------------------------------


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Probability that a right reply scores above a wrong one (ties count half)."""
    right = [s for s, y in zip(scores, labels, strict=True) if y]
    wrong = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not right or not wrong:
        return None
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return round(wins / (len(right) * len(wrong)), 4)


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float
    coverage: float  # share of all questions answered at or above it
    accuracy: float | None  # share of those answers that are right


def risk_coverage(labels: Sequence[bool], scores: Sequence[float]) -> list[CoveragePoint]:
    """Accuracy of the answers kept against the share kept, one point per distinct threshold, best first."""
    n = len(labels)
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    points: list[CoveragePoint] = []
    right = 0
    for index, (score, label) in enumerate(pairs, start=1):
        right += label
        if index < n and pairs[index][0] == score:
            continue
        points.append(CoveragePoint(round(score, 4), round(index / n, 4), round(right / index, 4)))
    return points


def threshold_for_accuracy(labels: Sequence[bool], scores: Sequence[float], target: float) -> float:
    """The lowest threshold whose kept answers are at least `target` right (1.0 if none is)."""
    best = 1.0
    for point in risk_coverage(labels, scores):
        if point.accuracy is not None and point.accuracy >= target:
            best = point.threshold
    return best


def threshold_for_declines(answerable: Sequence[bool], scores: Sequence[float], max_false_decline: float) -> float:
    """The highest threshold that declines at most `max_false_decline` of the answerable questions."""
    values = sorted(s for s, a in zip(scores, answerable, strict=True) if a)
    if not values:
        return 0.0
    allowed = math.floor(max_false_decline * len(values) + 1e-9)
    return round(values[allowed] - 1e-4, 4) if allowed < len(values) else 1.0
