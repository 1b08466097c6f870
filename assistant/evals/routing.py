"""`assistant eval routing`: how well each routing signal predicts a correct local answer.

For every labelled question the local model drafts an answer exactly as in a turn
(same retrieval, prompt and signals; nothing is stored in memory), and, when a
large model is configured, the large model answers too (audited like any call, not
counted against budgets). A local answer is correct when it contains an expected
string. Reported: accuracy of each model, the AUROC of each signal for predicting a
correct local answer, and for each threshold of a signal the escalation rate and
the accuracy of the router; the operating point is the lowest escalation rate that
keeps `retention` of the always-escalate accuracy (without a large model: the
threshold that best separates right from wrong local answers).

The simulated router keeps the rules a threshold change does not touch (nothing
relevant, context fit, a declining draft when `escalate_declined`) and varies one
signal's threshold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.evals.qa import QAItem, is_correct
from chains.route import RoutePolicy

if TYPE_CHECKING:
    from assistant.core import Assistant
    from memory.ratings import ReviewTurn, StoredRating

__all__ = [
    "OFF",
    "SETTING_OF_SIGNAL",
    "SIGNALS",
    "OperatingPoint",
    "RoutingCase",
    "RoutingReport",
    "ThresholdRow",
    "cases_from_ratings",
    "evaluate_routing",
    "run_cases",
    "settings_for",
    "summarize",
]

# Signals scored for AUROC; each is "higher means the local answer is more likely right".
SIGNALS = ("best_score", "score_gap", "context_fit", "mean_logprob", "min_logprob", "support", "not_declined")
# The signals whose threshold is a setting, so an operating point can be written for them.
SETTING_OF_SIGNAL = {
    "mean_logprob": "min_mean_logprob",
    "min_logprob": "min_min_logprob",
    "support": "min_support",
    "score_gap": "min_score_gap",
}
OFF: dict[str, Any] = {
    "min_mean_logprob": float("-inf"),
    "min_min_logprob": float("-inf"),
    "min_support": 0.0,
    "min_score_gap": 0.0,
}

T = TypeVar("T")


@dataclass
class RoutingCase:
    question: str
    answers: list[str]
    local_answer: str
    local_correct: bool
    signals: dict[str, Any]
    fixed_escalation: bool  # a rule outside the varied thresholds sends it to the large model
    configured_escalation: bool  # what the router does with the current settings
    large_answer: str | None = None
    large_correct: bool | None = None
    local_seconds: float = 0.0
    large_seconds: float = 0.0


@dataclass(frozen=True)
class ThresholdRow:
    threshold: float
    escalation_rate: float
    accuracy: float | None  # of the router (None without a large model)
    kept_local_accuracy: float | None  # of the answers kept local


@dataclass(frozen=True)
class OperatingPoint:
    signal: str
    setting: str
    threshold: float
    escalation_rate: float
    accuracy: float | None
    retention: float | None  # router accuracy / always-escalate accuracy


@dataclass
class RoutingReport:
    collection: str
    questions: int
    skipped_unanswerable: int
    local_accuracy: float
    large_accuracy: float | None
    configured: dict[str, float | None]  # escalation rate and accuracy with the current settings
    auroc: dict[str, float | None]
    tables: dict[str, list[ThresholdRow]]
    operating_point: OperatingPoint | None
    retention_target: float
    seconds_per_question: dict[str, float]
    cases: list[RoutingCase] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: infinite thresholds as the strings "inf" and "-inf" (float() reads them back)."""
        headline = {f"auroc.{k}": {"value": v, "better": "higher"} for k, v in self.auroc.items() if v is not None}
        headline["local_accuracy"] = {"value": self.local_accuracy, "better": "higher"}
        if self.large_accuracy is not None:
            headline["large_accuracy"] = {"value": self.large_accuracy, "better": "higher"}
        return _finite({"kind": "routing", **asdict(self), "headline": headline})


def _finite(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _finish(gen: Generator[Any, None, T]) -> T:
    """Run a generator to its end, discarding what it yields, and return its value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def run_cases(
    bot: Assistant,
    items: list[QAItem],
    collection: str,
    *,
    with_large: bool = True,
    on_case: Callable[[int, RoutingCase], None] | None = None,
) -> list[RoutingCase]:
    pipeline = bot.pipeline
    policy = pipeline.policy
    # The router with the varied thresholds off (Thresholds fields are named as the settings):
    # what still escalates whatever they are set to.
    fixed_rules = RoutePolicy(replace(policy.thresholds, **OFF), has_large=True)
    cases: list[RoutingCase] = []
    for number, item in enumerate(items, start=1):
        started = time.perf_counter()
        prepared = pipeline.prepare(item.question, user_id="eval", session_id="eval-routing", collection=collection)
        text = ""
        if prepared.prompt is not None:
            text = _finish(pipeline.draft(prepared, stream=False)).text
        local_seconds = time.perf_counter() - started
        signals = prepared.signals
        fixed = bool(fixed_rules.problems(signals, drafted=True))
        case = RoutingCase(
            question=item.question,
            answers=list(item.answers),
            local_answer=text,
            local_correct=bool(text) and is_correct(text, item.answers),
            signals=dict(signals),
            fixed_escalation=fixed,
            configured_escalation=bool(policy.problems(signals, drafted=prepared.prompt is not None)),
            local_seconds=round(local_seconds, 3),
        )
        if with_large and pipeline.escalator is not None:
            started = time.perf_counter()
            outcome = pipeline.escalator.ask(
                pipeline.large_request(prepared),
                reason="assistant eval routing",
                user_id=None,
                session_id=None,
                collection=collection,
                check_budget=False,
            )
            case.large_seconds = round(time.perf_counter() - started, 3)
            case.large_answer = outcome.answer.text if outcome.answer else ""
            case.large_correct = outcome.answer is not None and is_correct(outcome.answer.text, item.answers)
        cases.append(case)
        if on_case:
            on_case(number, case)
    return cases


def signal_value(case: RoutingCase, signal: str) -> float:
    """The signal as a number where higher is more confident; missing counts as least confident."""
    if signal == "not_declined":
        return 0.0 if case.signals.get("declined") or not case.local_answer else 1.0
    value = case.signals.get(signal)
    if value is None:
        # No second passage: nothing competes with the best one.
        return math.inf if signal == "score_gap" and case.signals.get("best_score") is not None else -math.inf
    return float(value)


def auroc(cases: list[RoutingCase], signal: str) -> float | None:
    from sklearn.metrics import roc_auc_score

    labels = [c.local_correct for c in cases]
    if len(set(labels)) < 2:
        return None
    values = [signal_value(c, signal) for c in cases]
    finite = [v for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    clipped = [low - 1 if v == -math.inf else high + 1 if v == math.inf else v for v in values]
    return round(float(roc_auc_score(labels, clipped)), 4)


def threshold_table(cases: list[RoutingCase], signal: str) -> list[ThresholdRow]:
    """One row per distinct threshold: escalate when a fixed rule fires or the signal is below it."""
    values = sorted({signal_value(c, signal) for c in cases if math.isfinite(signal_value(c, signal))})
    candidates = [-math.inf, *values, math.inf]
    has_large = all(c.large_correct is not None for c in cases)
    rows: list[ThresholdRow] = []
    for threshold in candidates:
        escalate = [c.fixed_escalation or signal_value(c, signal) < threshold for c in cases]
        kept = [c.local_correct for c, e in zip(cases, escalate, strict=True) if not e]
        accuracy = (
            sum(bool(c.large_correct) if e else c.local_correct for c, e in zip(cases, escalate, strict=True))
            / len(cases)
            if has_large
            else None
        )
        rows.append(
            ThresholdRow(
                threshold=threshold,
                escalation_rate=round(sum(escalate) / len(cases), 4),
                accuracy=None if accuracy is None else round(accuracy, 4),
                kept_local_accuracy=round(sum(kept) / len(kept), 4) if kept else None,
            )
        )
    return rows


def operating_point(
    cases: list[RoutingCase], tables: dict[str, list[ThresholdRow]], signal: str, retention: float
) -> OperatingPoint:
    rows = tables[signal]
    large = [c.large_correct for c in cases]
    if all(v is not None for v in large):
        always = sum(bool(v) for v in large) / len(cases)
        good = [r for r in rows if r.accuracy is not None and r.accuracy >= retention * always]
        best = (
            min(good, key=lambda r: (r.escalation_rate, -r.threshold))
            if good
            else max(rows, key=lambda r: r.accuracy or 0.0)
        )
        kept_share = (best.accuracy or 0.0) / always if always else None
        return OperatingPoint(
            signal, SETTING_OF_SIGNAL[signal], best.threshold, best.escalation_rate, best.accuracy, kept_share
        )
    # Without a large model: the threshold that best separates right from wrong local answers (Youden's J).
    right = sum(c.local_correct for c in cases) or 1
    wrong = (len(cases) - sum(c.local_correct for c in cases)) or 1

    def separation(row: ThresholdRow) -> float:
        kept = [c for c in cases if not (c.fixed_escalation or signal_value(c, signal) < row.threshold)]
        return sum(c.local_correct for c in kept) / right - sum(not c.local_correct for c in kept) / wrong

    best = max(rows, key=separation)
    return OperatingPoint(signal, SETTING_OF_SIGNAL[signal], best.threshold, best.escalation_rate, None, None)


def summarize(
    cases: list[RoutingCase], *, collection: str, skipped: int, retention: float = 0.95, signal: str | None = None
) -> RoutingReport:
    if not cases:
        raise ValueError("no answerable questions to evaluate")
    n = len(cases)
    has_large = all(c.large_correct is not None for c in cases)
    aurocs = {s: auroc(cases, s) for s in SIGNALS}
    tables = {s: threshold_table(cases, s) for s in SETTING_OF_SIGNAL}
    writable = {s: aurocs[s] for s in SETTING_OF_SIGNAL if aurocs[s] is not None}
    chosen = signal or (max(writable, key=lambda s: writable[s] or 0.0) if writable else None)
    configured_rate = sum(c.configured_escalation for c in cases) / n
    configured_accuracy = (
        sum(bool(c.large_correct) if c.configured_escalation else c.local_correct for c in cases) / n
        if has_large
        else None
    )
    return RoutingReport(
        collection=collection,
        questions=n,
        skipped_unanswerable=skipped,
        local_accuracy=round(sum(c.local_correct for c in cases) / n, 4),
        large_accuracy=round(sum(bool(c.large_correct) for c in cases) / n, 4) if has_large else None,
        configured={
            "escalation_rate": round(configured_rate, 4),
            "accuracy": None if configured_accuracy is None else round(configured_accuracy, 4),
        },
        auroc=aurocs,
        tables=tables,
        operating_point=operating_point(cases, tables, chosen, retention) if chosen else None,
        retention_target=retention,
        seconds_per_question={
            "local": round(sum(c.local_seconds for c in cases) / n, 3),
            "large": round(sum(c.large_seconds for c in cases) / n, 3),
        },
        cases=cases,
    )


def evaluate_routing(
    bot: Assistant,
    items: list[QAItem],
    collection: str,
    *,
    retention: float = 0.95,
    signal: str | None = None,
    with_large: bool = True,
    on_case: Callable[[int, RoutingCase], None] | None = None,
) -> RoutingReport:
    """Run the answerable questions of `items` and summarise; unanswerable ones are counted as skipped."""
    answerable = [item for item in items if item.answers]
    cases = run_cases(bot, answerable, collection, with_large=with_large, on_case=on_case)
    return summarize(
        cases, collection=collection, skipped=len(items) - len(answerable), retention=retention, signal=signal
    )


def settings_for(point: OperatingPoint) -> dict[str, float]:
    """The settings that realise an operating point: its threshold, the other varied checks off."""
    values = dict(OFF)
    ceiling = 1.0 if point.setting == "min_support" else 0.0 if "logprob" in point.setting else 1.0
    values[point.setting] = min(point.threshold, ceiling)  # +inf ("always escalate") as the setting's maximum
    return values


def cases_from_ratings(turns: list[ReviewTurn], ratings: list[StoredRating], policy: RoutePolicy) -> list[RoutingCase]:
    """People's ratings as labels: one case per rated turn answered by the local model.

    A turn's label is its ratings' majority ("correct" against "partly" or "wrong"; a
    tie counts as not correct). Only local answers can label the local model, so the
    set leans to questions the router already kept local: label some escalated
    questions with a QA file too when the large model is in use.
    """
    fixed_rules = RoutePolicy(replace(policy.thresholds, **OFF), has_large=True)
    by_turn: dict[int, list[str]] = {}
    for rating in ratings:
        by_turn.setdefault(rating.turn_id, []).append(rating.rating)
    cases = []
    for turn in turns:
        verdicts = by_turn.get(turn.turn_id)
        if not verdicts or turn.route != "local" or turn.signals.get("mean_logprob") is None:
            continue
        signals = dict(turn.signals)
        cases.append(
            RoutingCase(
                question=turn.question,
                answers=[],
                local_answer=turn.answer,
                local_correct=verdicts.count("correct") * 2 > len(verdicts),
                signals=signals,
                fixed_escalation=bool(fixed_rules.problems(signals, drafted=True)),
                configured_escalation=bool(policy.problems(signals, drafted=True)),
            )
        )
    return cases
