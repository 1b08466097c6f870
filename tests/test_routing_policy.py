"""The routing decision on given signals: which route, and the reason in words (no model needed)."""

from __future__ import annotations

import pytest

from assistant.errors import InvalidInputError
from chains.route import RoutePolicy, Thresholds, check_requested_route, draft_signals, support
from retrievers.passage import Passage

THRESHOLDS = Thresholds(min_relevance=0.33, min_context_fit=0.5, min_mean_logprob=-0.9, min_support=0.5)
LARGE = RoutePolicy(THRESHOLDS, has_large=True)
SMALL_ONLY = RoutePolicy(THRESHOLDS, has_large=False)
GOOD = {"best_score": 0.7, "score_gap": 0.1, "relevant_passages": 2, "context_fit": 1.0}
SOUND_DRAFT = {"mean_logprob": -0.3, "min_logprob": -2.0, "support": 0.9, "declined": False}


def passage(text: str) -> Passage:
    return Passage(chunk_id="c1", text=text, source="manual.md", location="Service", score=0.7)


def test_relevant_passages_lead_to_a_local_draft_and_a_sound_draft_stays_local() -> None:
    assert LARGE.decide(GOOD).route == "draft"
    decision = LARGE.decide({**GOOD, **SOUND_DRAFT}, drafted=True)
    assert decision.route == "local" and not decision.low_confidence
    assert "looks sound" in decision.reason and "-0.30" in decision.reason


def test_nothing_relevant_escalates_without_a_draft_or_abstains_without_a_large_model() -> None:
    weak = {"best_score": 0.12, "score_gap": 0.01, "relevant_passages": 0}
    escalated = LARGE.decide(weak)
    assert escalated.route == "large"
    assert "no relevant passage (best passage scored 0.12" in escalated.reason
    declined = SMALL_ONLY.decide(weak)
    assert declined.route == "abstain" and "no large model is configured" in declined.reason


def test_context_that_does_not_fit_escalates_before_drafting() -> None:
    decision = LARGE.decide({**GOOD, "context_fit": 0.3})
    assert decision.route == "large"
    assert "only 30% of the relevant passages fit" in decision.reason


@pytest.mark.parametrize(
    ("draft", "words"),
    [
        ({"mean_logprob": -1.4}, "low confidence (mean logprob -1.40 < -0.90)"),
        ({"support": 0.2}, "weakly supported by the passages (20% of its new words found"),
        ({"declined": True}, "said the documents do not answer"),
    ],
)
def test_each_weak_draft_signal_escalates_with_its_reason(draft: dict[str, object], words: str) -> None:
    decision = LARGE.decide({**GOOD, **SOUND_DRAFT, **draft}, drafted=True)
    assert decision.route == "large" and words in decision.reason
    kept = SMALL_ONLY.decide({**GOOD, **SOUND_DRAFT, **draft}, drafted=True)
    assert kept.route == "local" and kept.low_confidence and words in kept.reason


def test_the_caller_can_force_either_route() -> None:
    forced = LARGE.decide({**GOOD, **SOUND_DRAFT}, requested="large", drafted=True)
    assert forced.route == "large" and forced.reason.startswith("route='large' was requested")
    weak_draft = {**GOOD, **SOUND_DRAFT, "mean_logprob": -2.0}
    local = LARGE.decide(weak_draft, requested="local", drafted=True)
    assert local.route == "local" and local.low_confidence and "route='local' was requested" in local.reason
    with pytest.raises(InvalidInputError, match="route: must be one of auto, local, large"):
        check_requested_route("cloud")


def test_a_local_only_collection_is_never_escalated_and_says_so() -> None:
    for requested in ("auto", "large"):
        decision = LARGE.decide(
            {**GOOD, **SOUND_DRAFT, "mean_logprob": -3.0},
            requested=requested,  # type: ignore[arg-type]
            local_only=True,
            collection="hr",
            drafted=True,
        )
        assert decision.route == "local"
        assert "collection 'hr' is local-only" in decision.reason
        assert decision.note == "Answered locally: collection 'hr' is local-only."
    nothing = LARGE.decide({"best_score": 0.1, "relevant_passages": 0}, local_only=True, collection="hr")
    assert nothing.route == "abstain" and "local-only" in nothing.reason


def test_support_counts_the_words_the_draft_adds_that_the_passages_hold() -> None:
    found = [passage("The X200 is serviced every 500 operating hours or 6 months.")]
    question = "How often is the X200 serviced?"
    assert support("Every 500 operating hours.", found, question) == 1.0
    assert support("About 900 flying days.", found, question) == 0.0
    assert support("The X200 is serviced.", found, question) == 0.0  # only repeats the question
    signals = draft_signals("The documents do not mention it.", [{"logprob": -0.5}, {"logprob": -1.5}], found, question)
    assert signals == {"mean_logprob": -1.0, "min_logprob": -1.5, "support": 0.0, "declined": True}


def test_a_question_outside_the_documents_is_one_decision_abstain_or_large_never_large_when_local_only() -> None:
    strict = Thresholds(min_relevance=0.33, min_coverage=0.6, min_identifiers_known=1.0)
    unknown_name = {**GOOD, "coverage": 0.8, "identifiers_known": 0.0}
    few_words = {**GOOD, "coverage": 0.4, "identifiers_known": None}
    for signals, why in [(unknown_name, "of the names it asks about"), (few_words, "of its words are in the best")]:
        alone = RoutePolicy(strict, has_large=False).decide(signals)
        assert alone.route == "abstain" and why in alone.reason
        assert RoutePolicy(strict, has_large=True).decide(signals).route == "large"
        private = RoutePolicy(strict, has_large=True).decide(signals, local_only=True, collection="hr")
        assert private.route == "abstain" and "local-only" in private.reason
    # A question whose every named code is in the documents is not declined for a low cosine
    # ("What does E11 mean?" matches little by meaning).
    named = {**GOOD, "best_score": 0.2, "identifiers_known": 1.0}
    assert RoutePolicy(strict, has_large=False).decide(named).route == "draft"
    assert RoutePolicy(strict, has_large=False).decide({**named, "identifiers_known": None}).route == "abstain"
    # Signals a collection cannot measure (no identifiers asked, no keyword index) never decline.
    assert RoutePolicy(strict, has_large=False).decide({**GOOD, "coverage": None}).route == "draft"
