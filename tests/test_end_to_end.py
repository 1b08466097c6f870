"""The assistant on real parts: bundled GGUF model, bundled embedder, embedded Chroma, SQLite."""

from __future__ import annotations

import pytest

from assistant import Assistant, InvalidQuestionError, UnknownCollectionError
from tests.conftest import HANDBOOK

pytestmark = pytest.mark.llm


def test_answers_a_fact_and_cites_its_file(bot: Assistant) -> None:
    reply = bot.ask("How often is the X200 serviced?", user_id="alice", session_id="fact", collection="handbook")
    assert reply.route == "local"
    assert "500 operating hours" in reply.answer
    assert reply.sources[0].file == "x200_manual.md"
    assert reply.sources[0].location == "Maintenance › Service interval"
    assert "500 operating hours" in reply.evidence
    assert reply.model == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert reply.usage["completion_tokens"] > 0
    assert reply.timings["total_ms"] > 0


def test_cites_the_page_of_a_pdf(bot: Assistant) -> None:
    reply = bot.ask(
        "What is the hotel limit per night in Paris?", user_id="alice", session_id="pdf", collection="handbook"
    )
    assert "250 EUR" in reply.answer
    assert (reply.sources[0].file, reply.sources[0].location) == ("travel_policy.pdf", "page 2")


def test_follow_up_is_resolved_through_memory(bot: Assistant) -> None:
    bot.ask("How often is the X200 serviced?", user_id="bob", session_id="follow", collection="handbook")
    reply = bot.ask("And what about its warranty?", user_id="bob", session_id="follow", collection="handbook")
    assert "X200" in reply.standalone_question
    assert "warranty" in reply.standalone_question.lower()
    assert "24-month" in reply.answer
    assert reply.sources[0].location == "Warranty"


def test_unanswerable_question_is_declined(bot: Assistant) -> None:
    reply = bot.ask("Who won the football World Cup in 2022?", user_id="alice", session_id="off", collection="handbook")
    assert reply.route == "abstain"
    assert reply.sources == []
    assert "I searched collection 'handbook' for" in reply.answer and "do not answer" in reply.answer
    assert "Nearest topics found" in reply.answer
    assert "relevance threshold" in reply.reason
    stored = bot.history("alice", "off")
    assert [m.route for m in stored] == [None, "abstain"]
    assert stored[1].reason == reply.reason


def test_two_users_never_see_each_others_history(bot: Assistant) -> None:
    bot.ask("How often is the X200 serviced?", user_id="carol", session_id="shared-name", collection="handbook")
    reply = bot.ask("And what about its warranty?", user_id="dave", session_id="shared-name", collection="handbook")
    # Dave has no previous turn: his follow-up cannot borrow "X200" from Carol's session.
    assert "X200" not in reply.standalone_question
    assert bot.history("dave", "shared-name")[0].content == "And what about its warranty?"
    assert len(bot.history("carol", "shared-name")) == 2


def test_stream_yields_the_answer_then_the_reply(bot: Assistant) -> None:
    chunks = list(
        bot.stream("Who must approve refunds above 500 EUR?", user_id="erin", session_id="s", collection="handbook")
    )
    # Stages first, then the answer a checked sentence at a time, the quoted evidence, the Reply.
    assert [c.stage for c in chunks[:2]] == ["searching", "thinking"]
    chunks = [c for c in chunks if c.stage is None]
    assert len(chunks) >= 3 and all(c.reply is None for c in chunks[:-1])
    assert chunks[0].text.rstrip().endswith(".") and not chunks[0].text.startswith("\n")
    assert any(c.text.startswith("\n\n> “") for c in chunks[1:-1])
    final = chunks[-1].reply
    assert final is not None
    assert "".join(c.text for c in chunks) == final.answer
    assert "team lead" in final.answer
    assert final.sources[0].file == "support_handbook.html"


def test_ingesting_twice_adds_nothing(bot: Assistant) -> None:
    before = bot.index.check("handbook")
    report = bot.ingest(HANDBOOK, collection="handbook")
    assert report.chunks_added == 0 and report.chunks_deleted == 0
    assert report.files_unchanged == 4
    after = bot.index.check("handbook")
    assert after.consistent and after.live == before.live == report.chunks_total


def test_unknown_collection_and_empty_question_are_clear_errors(bot: Assistant) -> None:
    with pytest.raises(UnknownCollectionError, match="assistant ingest PATH --collection nope"):
        bot.ask("anything", collection="nope")
    with pytest.raises(InvalidQuestionError, match="empty"):
        bot.ask("   ", collection="handbook")


def test_streamed_usage_matches_a_plain_call(bot: Assistant) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = [SystemMessage("Answer briefly."), HumanMessage("Name one water heater part.")]
    plain = bot.llm.invoke(messages)
    merged = None
    for chunk in bot.llm.stream(messages):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None and plain.usage_metadata and merged.usage_metadata
    assert merged.usage_metadata["input_tokens"] == plain.usage_metadata["input_tokens"]
    assert merged.text == plain.text
    assert len(merged.response_metadata["logprobs"]["content"]) == plain.usage_metadata["output_tokens"]
