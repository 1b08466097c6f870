"""The routing decision on given signals: which route, and the reason in words (no model needed).

The confidence model here is written by hand so each probability is known: it reads
`best_score` before the draft and `kept_share` after it."""

from __future__ import annotations

import pytest

from assistant.errors import ConfigurationError, InvalidInputError
from assistant.settings import RoutingSettings
from chains.confidence import AFTER_DRAFT, BEFORE_DRAFT, ConfidenceModel, LogisticModel
from chains.route import RoutePolicy, check_requested_route


def stage(names: tuple[str, ...], weights: dict[str, float], centres: dict[str, float]) -> LogisticModel:
    """p = sigmoid(sum of weight × (value - centre)): a signal above its centre raises the confidence."""
    middle = tuple(centres.get(n, 0.0) for n in names)
    ones = tuple(1.0 for _ in names)
    return LogisticModel(names, middle, middle, ones, tuple(weights.get(n, 0.0) for n in names), 0.0)


# before: p = sigmoid(20 * (best_score - 0.4)); after: p = sigmoid(8 * (kept_share - 0.5))
MODEL = ConfidenceModel(
    stage(BEFORE_DRAFT, {"best_score": 20.0}, {"best_score": 0.4}),
    stage(AFTER_DRAFT, {"kept_share": 8.0}, {"kept_share": 0.5}),
)
THRESHOLDS = RoutingSettings(min_relevance=0.33, answer_confidence=0.7, decline_confidence=0.2, min_context_fit=0.5)
LARGE = RoutePolicy(THRESHOLDS, has_large=True, confidence=MODEL)
SMALL_ONLY = RoutePolicy(THRESHOLDS, has_large=False, confidence=MODEL)
GOOD = {"best_score": 0.6, "score_gap": 0.1, "relevant_passages": 2, "context_fit": 1.0}
BACKED = {"kept_share": 1.0}  # p = 0.98
HALF = {"kept_share": 0.5}  # p = 0.5
NONE_BACKED = {"kept_share": 0.0}  # p = 0.018


def test_a_covered_question_is_drafted_and_a_backed_draft_is_shown_with_its_confidence() -> None:
    signals = dict(GOOD)
    assert LARGE.decide(signals).route == "draft"
    assert signals["confidence_before_draft"] == pytest.approx(0.982, abs=1e-3)
    decision = LARGE.decide({**GOOD, **BACKED}, drafted=True)
    assert decision.route == "local" and not decision.low_confidence
    assert "confidence 0.98" in decision.reason
    assert "share of the draft's sentences the passages back 1.00 (raising it)" in decision.reason


def test_an_uncovered_question_is_declined_before_drafting_or_sent_to_the_large_model() -> None:
    weak = {"best_score": 0.25, "score_gap": 0.01, "relevant_passages": 0}
    declined = SMALL_ONLY.decide(dict(weak))
    assert declined.route == "abstain"
    assert "confidence 0.05" in declined.reason
    assert "similarity of the best passage 0.25 (lowering it)" in declined.reason
    assert "looks sound" not in declined.reason
    assert LARGE.decide(dict(weak)).route == "large"
    nothing = SMALL_ONLY.decide({"best_score": None})
    assert nothing.route == "abstain" and "no passage was found" in nothing.reason


def test_an_unsure_draft_escalates_or_is_marked_low_confidence_or_declined() -> None:
    assert LARGE.decide({**GOOD, **HALF}, drafted=True).route == "large"
    marked = SMALL_ONLY.decide({**GOOD, **HALF}, drafted=True)
    assert marked.route == "local" and marked.low_confidence and "confidence 0.50" in marked.reason
    assert "below 0.70" in marked.reason
    refused = SMALL_ONLY.decide({**GOOD, **NONE_BACKED}, drafted=True)
    assert refused.route == "abstain" and "too unsure to show" in refused.reason
    # Backed sentences already streamed stay, marked, instead of a refusal after them.
    kept = refused.shown_anyway()
    assert kept.route == "local" and kept.low_confidence


def test_context_that_does_not_fit_escalates_before_drafting() -> None:
    decision = LARGE.decide({**GOOD, "context_fit": 0.3})
    assert decision.route == "large"
    assert "only 30% of the relevant passages fit" in decision.reason


def test_the_caller_can_force_either_route() -> None:
    forced = LARGE.decide({**GOOD, **BACKED}, requested="large", drafted=True)
    assert forced.route == "large" and forced.reason.startswith("route='large' was requested")
    local = LARGE.decide({**GOOD, **HALF}, requested="local", drafted=True)
    assert local.route == "local" and local.low_confidence and "route='local' was requested" in local.reason
    with pytest.raises(InvalidInputError, match="route: must be one of auto, local, large"):
        check_requested_route("cloud")


def test_a_local_only_collection_is_never_escalated_and_says_so() -> None:
    for requested in ("auto", "large"):
        decision = LARGE.decide(
            {**GOOD, **HALF},
            requested=requested,  # type: ignore[arg-type]
            local_only=True,
            collection="hr",
            drafted=True,
        )
        assert decision.route == "local" and decision.low_confidence
        assert "collection 'hr' is local-only" in decision.reason
        assert decision.note == "Answered locally: collection 'hr' is local-only."
    nothing = LARGE.decide({"best_score": 0.1, "relevant_passages": 0}, local_only=True, collection="hr")
    assert nothing.route == "abstain" and "local-only" in nothing.reason


def test_the_bundled_model_loads_and_a_broken_file_is_a_configuration_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = ConfidenceModel.load()
    assert 0.0 <= model.before(GOOD) <= 1.0 and 0.0 <= model.after({**GOOD, **BACKED}) <= 1.0
    broken = tmp_path / "model.json"
    broken.write_text('{"before_draft": {"features": ["nope"]}}')
    with pytest.raises(ConfigurationError, match="is not a confidence model"):
        ConfidenceModel.load(broken)
    assert ConfidenceModel.from_dict(__import__("json").loads(model.to_json())) == model
