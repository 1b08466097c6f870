"""The small model behind an OpenAI-compatible server (`llm_base_url`): the real
llama_cpp.server serving the bundled GGUF gives the router what the in-process model
gives it — exact token counts, per-token log-probabilities, usage, and JSON bound to a
schema — so answers are routed the same way from either."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessageChunk, HumanMessage

from assistant import Assistant, Settings
from assistant.errors import ModelUnavailableError
from assistant.evals.answers import own_words
from assistant.factory import build_local_llm
from assistant.llamacpp import ChatLlamaCpp, bundled_gguf_path
from assistant.served import ChatServedModel
from tests.conftest import HANDBOOK
from tests.services import llama_server as start_llama_server

pytestmark = pytest.mark.llm


@pytest.fixture(scope="module")
def served(llama_server: str, tmp_path_factory: pytest.TempPathFactory) -> ChatServedModel:
    settings = Settings(data_dir=tmp_path_factory.mktemp("served"), llm_base_url=llama_server, llm_model="large")
    model = build_local_llm(settings)
    assert isinstance(model, ChatServedModel)
    return model


def test_token_counts_are_the_servers_own(served: ChatServedModel) -> None:
    local = ChatLlamaCpp(model_path=bundled_gguf_path())
    for text in ["The X200 comes with a 24-month warranty.", "E17: pression d'entrée trop basse", "work_mem"]:
        assert served.count_tokens(text) == local.count_tokens(text)


def test_a_stream_carries_logprobs_and_usage(served: ChatServedModel) -> None:
    merged = None
    for chunk in served.stream([HumanMessage("Name a colour.")]):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None and merged.text
    logprobs = merged.response_metadata["logprobs"]["content"]
    assert logprobs and all(item["logprob"] <= 0 for item in logprobs)
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] == len(logprobs)
    assert merged.usage_metadata["input_tokens"] >= served.count_tokens("Name a colour.")


def test_json_is_bound_to_the_schema(served: ChatServedModel) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    }
    value = served.generate_json([HumanMessage("Plan a trip: which city, how many days?")], schema)
    assert isinstance(value, dict) and set(value) == {"city", "days"}
    assert isinstance(value["city"], str) and isinstance(value["days"], int)


def test_an_assistant_on_the_served_model_routes_on_its_logprobs(llama_server: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, llm_base_url=llama_server, llm_model="large", remember_facts=False)
    bot = Assistant.from_settings(settings)
    bot.ingest(HANDBOOK, "handbook")
    reply = bot.ask("How long is the warranty of the X200?", collection="handbook")
    assert reply.route == "local" and reply.model == "large"
    assert "24-month" in own_words(reply.answer)  # the model's words, not only the quoted evidence
    assert reply.signals["mean_logprob"] is not None and reply.signals["mean_logprob"] < 0
    assert reply.usage["completion_tokens"] > 0 and reply.usage["prompt_tokens"] > 100


def test_a_server_without_logprobs_still_answers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """llama_cpp.server started without --logits_all refuses log-probabilities: the
    answer comes anyway, and the operator is told how to restore the signal."""
    with start_llama_server(bundled_gguf_path(), tmp_path / "server.log", logits_all=False) as (url, _process):
        model = build_local_llm(Settings(data_dir=tmp_path, llm_base_url=url, llm_model="large"))
        with caplog.at_level(logging.WARNING, logger="assistant.served"):
            first = model.invoke("Name a colour.")
            streamed = "".join(chunk.text for chunk in model.stream("Name a fruit."))
    assert first.text and streamed
    assert "--logits_all true" in caplog.text


def test_concurrent_streams_each_run_to_their_end(served: ChatServedModel) -> None:
    """Replicas share the server: a stream must not be cut when another request arrives."""
    questions = ["Name a colour.", "Name a fruit.", "Name a city.", "Name an animal."]
    with ThreadPoolExecutor(len(questions)) as pool:
        merged = list(pool.map(lambda q: _merged(served.stream([HumanMessage(q)])), questions))
    for message in merged:
        assert message.text and message.response_metadata.get("finish_reason") in ("stop", "length")
        assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] > 0


def test_a_server_that_cuts_streams_short_is_an_error_not_an_empty_answer(tmp_path: Path) -> None:
    """llama_cpp.server's default (--interrupt_requests true) ends a stream as soon as another
    request arrives; the answer would be silently empty. It is an error that says what to change."""
    with start_llama_server(bundled_gguf_path(), tmp_path / "server.log", interrupt=True) as (url, _process):
        model = build_local_llm(Settings(data_dir=tmp_path, llm_base_url=url, llm_model="large"))
        prompt = [HumanMessage("Write a long story about a lighthouse keeper.")]
        with ThreadPoolExecutor(3) as pool:
            outcomes = list(pool.map(lambda _: _outcome(model, prompt), range(3)))
    assert any(isinstance(o, ModelUnavailableError) for o in outcomes), outcomes
    for outcome in outcomes:
        if isinstance(outcome, ModelUnavailableError):
            assert "--interrupt_requests false" in str(outcome)
        else:
            assert outcome.response_metadata.get("finish_reason") in ("stop", "length")


def _merged(chunks: Iterator[BaseMessageChunk]) -> BaseMessageChunk:
    merged = None
    for chunk in chunks:
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    return merged


def _outcome(model: ChatServedModel, prompt: list[HumanMessage]) -> BaseMessageChunk | ModelUnavailableError:
    try:
        return _merged(model.stream(prompt, max_tokens=200))
    except ModelUnavailableError as exc:
        return exc
