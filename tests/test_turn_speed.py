"""What makes a turn fast, checked for what it must not change: the local model stops once its
answer is complete yet still reports its log-probabilities and usage; llama.cpp reuses the
prompt prefix a turn shares with the last; each stage's time is in the Reply; learning and
the conversation summary follow the answer without being lost.

On the real bundled model and embedder (the session `bot` over data/handbook). No timing
is asserted: benchmarks/bench_speed.py measures the speed."""

from __future__ import annotations

import pytest

from assistant import Assistant
from chains.followups import AfterTurn, FollowUps
from chains.verify import SentenceGate, Verifier
from retrievers.passage import Passage
from retrievers.words import sentences

pytestmark = pytest.mark.llm

INSIDE = "How often is the X200 serviced?"
STAGES = ("load_ms", "recall_ms", "condense_ms", "retrieve_ms", "prompt_ms", "first_token_ms", "generate_ms")


def test_the_gate_stops_once_enough_sentences_passed() -> None:
    passage = Passage(
        text="The X200 must be serviced every 6 months. The warranty lasts 24 months. The tank holds 200 litres.",
        source="x200.md",
        location="",
        score=0.9,
        chunk_id="c1",
    )
    draft = "The X200 is serviced every 6 months. The warranty lasts 24 months. The tank holds 200 litres. "
    for enough, shown in ((1, 1), (2, 2), (None, 3)):
        gate = SentenceGate(Verifier([passage], INSIDE), enough=enough)
        released = [s for piece in draft.split(" ") for s in gate.feed(piece + " ")] + gate.close()
        assert len(released) == shown, (enough, released)
        assert gate.stop is (enough is not None)


def test_every_stage_of_a_local_turn_is_timed_and_the_follow_up_after_it(bot: Assistant) -> None:
    reply = bot.ask(INSIDE, user_id="speed", collection="handbook", route="local")
    assert reply.route == "local"
    for stage in (*STAGES, "checks_ms", "store_ms", "total_ms"):
        assert isinstance(reply.timings.get(stage), float), (stage, reply.timings)
    assert reply.timings["first_token_ms"] <= reply.timings["total_ms"]
    assert reply.after is not None
    after = reply.after.result(timeout=120)
    assert isinstance(after, AfterTurn) and set(after.timings) == {"learn_ms", "summary_ms"}


def test_a_stopped_answer_keeps_its_log_probabilities_and_usage(bot: Assistant) -> None:
    brief = bot.with_settings(llm_answer_sentences=1)
    reply = brief.ask(INSIDE, user_id="speed", collection="handbook", route="local")
    own_words = reply.answer.split("\n\n>")[0]  # the model's sentences, before the quoted evidence
    assert len(sentences(own_words)) <= 1, reply.answer
    assert reply.signals["sentences_kept"] <= 1
    assert reply.signals["mean_logprob"] is not None  # the stream closed normally, not cut off
    assert reply.usage["completion_tokens"] > 0 and reply.usage["prompt_tokens"] > 0


def test_a_turn_reuses_the_prompt_prefix_it_shares_with_the_last(bot: Assistant) -> None:
    bot.ask(INSIDE, user_id="speed", collection="handbook", route="local")
    again = bot.ask("How long is the X200 warranty?", user_id="speed", collection="handbook", route="local")
    # At least the system message is shared by every prompt; llama.cpp does not evaluate it again.
    assert 0 < again.usage["cached_tokens"] < again.usage["prompt_tokens"]


def test_what_a_user_says_about_themselves_is_learned_after_the_answer_and_never_lost(bot: Assistant) -> None:
    user = "speed-facts"
    reply = bot.ask("I run the billing database. How often is the X200 serviced?", user_id=user, collection="handbook")
    assert reply.answer  # shown before the learning finished
    assert any("billing database" in fact for fact in reply.remembered)  # waits for it
    assert any("billing database" in f.content for f in bot.facts(user))
    bot.forget(user)


def test_memory_read_through_the_assistant_waits_for_pending_follow_ups(bot: Assistant) -> None:
    user = "speed-wait"
    bot.ask("I prefer short answers. How long is the X200 warranty?", user_id=user, collection="handbook")
    # No wait on the reply: reading the facts must find them stored.
    assert any("short" in f.content for f in bot.facts(user))
    bot.forget(user)


def test_a_failed_follow_up_step_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    """Fake: a step that raises (a model error during learning cannot be provoked on demand)."""
    followups = FollowUps()

    def broken() -> list[str]:
        raise RuntimeError("model went away")

    future = followups.submit("u", {"learn": broken, "summary": lambda: ["kept"]})
    after = future.result(timeout=10)
    assert after.remembered == ["kept"] and set(after.timings) == {"learn_ms", "summary_ms"}
    assert "after-turn step 'learn' failed" in caplog.text
    followups.close()
