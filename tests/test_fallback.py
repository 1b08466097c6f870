"""Escalation to a large model behind a real OpenAI-compatible server (llama_cpp.server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant, Settings
from tests.conftest import HANDBOOK, free_port

pytestmark = [pytest.mark.llm, pytest.mark.fallback_server]


def with_fallback(tmp_path: Path, base_url: str, **overrides: object) -> Assistant:
    settings = Settings(
        data_dir=tmp_path / "state",
        fallback_base_url=base_url,
        fallback_model="large",
        fallback_timeout_s=60,
        **overrides,
    )
    bot = Assistant.from_settings(settings)
    bot.ingest(HANDBOOK, collection="handbook")
    return bot


def test_question_outside_the_documents_goes_to_the_large_model(llama_server: str, tmp_path: Path) -> None:
    bot = with_fallback(tmp_path, llama_server)
    reply = bot.ask("Who won the football World Cup in 2022?", user_id="u", session_id="s", collection="handbook")
    assert reply.route == "fallback"
    assert reply.answer.strip()
    assert "no relevant passage" in reply.reason and "large model" in reply.reason
    stored = bot.history("u", "s")[-1]
    assert (stored.route, stored.reason, stored.content) == ("fallback", reply.reason, reply.answer)


def test_low_confidence_local_answer_is_escalated(llama_server: str, tmp_path: Path) -> None:
    # A threshold no answer can meet forces the confidence rule to fire on a real answer.
    bot = with_fallback(tmp_path, llama_server, min_mean_logprob=-0.0001)
    reply = bot.ask("What is the extension for building security?", collection="handbook")
    assert reply.route == "fallback"
    assert "low confidence" in reply.reason
    assert reply.signals["mean_logprob"] is not None and reply.signals["mean_logprob"] < -0.0001
    assert reply.sources and reply.sources[0].file == "faq.txt"


def test_unreachable_large_model_falls_back_to_the_local_answer(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    bot = with_fallback(tmp_path, closed, min_mean_logprob=-0.0001)
    reply = bot.ask("What is the extension for building security?", collection="handbook")
    assert reply.route == "local" and reply.low_confidence
    assert "failed" in reply.reason and "kept the local answer" in reply.reason
    assert "5555" in reply.answer
