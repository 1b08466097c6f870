"""The fakes of `assistant.testing`, as users' own tests would use them: an assistant
built on them ingests real files into a real embedded Chroma and SQLite and answers with
citations; both fakes pass LangChain's standard suites; importing them loads no model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from assistant import Settings, build_assistant
from assistant.capabilities import CountsTokens, GeneratesJSON, HasTokenLimit
from assistant.testing import FakeChatModel, FakeEmbeddings, ScriptExhaustedError

WARRANTY = "The X200 coffee machine comes with a 24-month warranty.\nThe warranty covers the pump and the heater.\n"
TRAVEL = "Travel expenses are refunded within 30 days.\nTrain tickets are booked in second class.\n"


def test_an_assistant_on_the_fakes_answers_from_the_right_file(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.md").write_text(WARRANTY, encoding="utf-8")
    (docs / "travel.md").write_text(TRAVEL, encoding="utf-8")
    llm = FakeChatModel(
        responses=["The X200 comes with a 24-month warranty.", "Travel expenses are refunded within 30 days."],
        logprob=-0.05,
    )
    bot = build_assistant(Settings(data_dir=tmp_path / "state"), llm=llm, embeddings=FakeEmbeddings())

    report = bot.ingest(docs, collection="docs")
    assert report.files_new == 2 and report.files_failed == []

    reply = bot.ask("How long is the X200 warranty?", collection="docs")
    assert reply.route == "local" and reply.model == "fake-chat-model"
    assert reply.answer.startswith("The X200 comes with a 24-month warranty.")
    assert reply.sources and reply.sources[0].file == "warranty.md"
    assert reply.signals["mean_logprob"] == pytest.approx(-0.05)
    assert reply.usage["completion_tokens"] > 0 and reply.usage["prompt_tokens"] > 0

    reply = bot.ask("When are travel expenses refunded?", collection="docs")
    assert reply.answer.startswith("Travel expenses are refunded within 30 days.")
    assert reply.sources[0].file == "travel.md"


def test_a_fake_stands_in_for_the_large_model(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "warranty.md").write_text(WARRANTY, encoding="utf-8")
    large = FakeChatModel(responses=["The X200 coffee machine comes with a 24-month warranty."], model_name="large")
    bot = build_assistant(
        Settings(data_dir=tmp_path / "state"), llm=FakeChatModel(), embeddings=FakeEmbeddings(), fallback=large
    )
    bot.ingest(docs, collection="docs")
    reply = bot.ask("How long is the X200 warranty?", collection="docs", route="large")
    assert reply.route == "large" and reply.model == "large"
    assert reply.answer.startswith("The X200 coffee machine comes with a 24-month warranty.")
    assert reply.sources[0].file == "warranty.md"


def test_replies_follow_the_script() -> None:
    model = FakeChatModel(responses=["One.", "Two."])
    assert [model.invoke("q").text for _ in range(2)] == ["One.", "Two."]
    with pytest.raises(ScriptExhaustedError, match="cycle=True"):
        model.invoke("q")
    cycling = FakeChatModel(responses=["One.", "Two."], cycle=True)
    assert [cycling.invoke("q").text for _ in range(3)] == ["One.", "Two.", "One."]


def test_a_stream_ends_with_usage_finish_reason_and_logprobs() -> None:
    model = FakeChatModel(responses=["The pump is covered."], logprob=-0.25, model_name="tiny")
    chunks = list(model.stream([HumanMessage("Is the pump covered?")]))
    assert [c.text for c in chunks if c.text] == ["The", " pump", " is", " covered", "."]
    merged: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.text == "The pump is covered."
    assert merged.response_metadata["finish_reason"] == "stop"
    assert merged.response_metadata["model_name"] == "tiny"
    assert [t["logprob"] for t in merged.response_metadata["logprobs"]["content"]] == [-0.25] * 5
    assert merged.usage_metadata == {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}


def test_stop_and_max_tokens_cut_the_reply() -> None:
    model = FakeChatModel(responses=["First paragraph.\n\nSecond one.", "a b c d e"])
    assert model.invoke("q", stop=["\n\n"]).text == "First paragraph."
    cut = model.invoke("q", max_tokens=2)
    assert cut.text == "a b" and cut.response_metadata["finish_reason"] == "length"


def test_the_fakes_offer_the_capabilities_of_the_real_models() -> None:
    model = FakeChatModel(json_responses=[{"text": "The user lives in Lyon."}, "not json"])
    assert isinstance(model, CountsTokens) and isinstance(model, GeneratesJSON)
    assert model.generate_json([HumanMessage("I live in Lyon")], {}) == {"text": "The user lives in Lyon."}
    assert model.generate_json([HumanMessage("x")], {}) is None
    assert model.generate_json([HumanMessage("x")], {}) is None  # the script has run out
    embeddings = FakeEmbeddings()
    assert isinstance(embeddings, CountsTokens) and isinstance(embeddings, HasTokenLimit)
    assert embeddings.count_tokens("Hello, world") == 3


def test_fake_embeddings_are_deterministic_normalised_and_near_for_shared_words() -> None:
    embeddings = FakeEmbeddings()
    doc, question, other = (
        np.array(v)
        for v in embeddings.embed_documents(
            [
                "The X200 warranty lasts 24 months.",
                "How long is the X200 warranty?",
                "Trains are booked in second class.",
            ]
        )
    )
    assert np.linalg.norm(doc) == pytest.approx(1.0) and len(doc) == embeddings.dimension == 256
    assert doc @ question > 0.3 > abs(doc @ other)
    assert embeddings.embed_query("How long is the X200 warranty?") == question.tolist()
    assert FakeEmbeddings().embed_query("anything") == embeddings.embed_query("anything")
    assert np.linalg.norm(embeddings.embed_query("")) == pytest.approx(1.0)


@pytest.mark.slow
def test_importing_the_fakes_loads_no_model() -> None:
    heavy = "{'torch', 'llama_cpp', 'onnxruntime', 'chromadb'}"
    code = f"import assistant.testing, sys; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


class _DeclaredChat:
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return FakeChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"responses": ["Hello, I am a scripted model."], "cycle": True}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class TestFakeChatModelUnit(_DeclaredChat, ChatModelUnitTests):
    pass


class TestFakeChatModelIntegration(_DeclaredChat, ChatModelIntegrationTests):
    pass


class TestFakeEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return FakeEmbeddings


class TestFakeEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[Embeddings]:
        return FakeEmbeddings
