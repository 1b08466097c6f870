"""OpenAI's request semantics over HTTP, with the official `openai` client against the real
server and the real model: `system` and `developer` messages reach the prompt (or a clear
400 names the message), `max_tokens` / `max_completion_tokens` cap the answer and
`finish_reason` says "length", and the stream is framed as OpenAI frames it.

To see the prompt the model gets, the assistant's real local model carries a LangChain
callback handler that keeps the messages of every call: a real observation, no fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage

from assistant import Assistant, Settings
from assistant.factory import build_local_llm
from assistant.settings import ServerSettings
from tests.conftest import HANDBOOK
from tests.test_server import start

pytestmark = pytest.mark.llm

QUESTION = "How long is the warranty of the X200?"
SYSTEM = "You answer for the help desk of Kestrel Works, ticket queue KW-7731."
DEVELOPER = "Mention the ticket queue when it helps."


class PromptRecorder(BaseCallbackHandler):
    """The messages each chat-model call of the assistant received."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.prompts.extend(messages)

    def system_texts(self) -> list[str]:
        return [m.text for prompt in self.prompts for m in prompt if m.type == "system"]


@dataclass
class Served:
    url: str
    key: str
    bot: Assistant
    recorder: PromptRecorder

    def client(self) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0, timeout=600)

    def post(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {self.key}"},
            json={"model": "handbook", **body},
            timeout=600,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("openai-semantics"))
    recorder = PromptRecorder()
    llm = build_local_llm(settings)
    llm.callbacks = [recorder]
    bot = Assistant.from_settings(settings, llm=llm)
    assert bot.ingest(HANDBOOK, collection="handbook").files_failed == []
    # A question limit far above the prompt budget, so the model's own token count refuses long system text.
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000, server_max_message_chars=100_000))
    try:
        yield Served(url, bot.memory.keys.create("dev").secret, bot, recorder)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        bot.close()


def test_system_and_developer_messages_reach_the_prompt(served: Served) -> None:
    served.recorder.prompts.clear()
    completion = served.client().chat.completions.create(
        model="handbook",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "developer", "content": [{"type": "text", "text": DEVELOPER}]},
            {"role": "user", "content": QUESTION},
        ],
        extra_headers={"X-Session-Id": "sys-1"},
    )
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    # The answer was drafted from a prompt holding both texts, in the order they were sent.
    drafted = [text for text in served.recorder.system_texts() if SYSTEM in text]
    assert drafted, served.recorder.system_texts()
    assert all(DEVELOPER in text and text.index(SYSTEM) < text.index(DEVELOPER) for text in drafted)
    # They are the caller's instructions, not turns of the conversation.
    assert [m.content for m in served.bot.history("dev", "sys-1")] == [QUESTION, completion.choices[0].message.content]


def test_max_tokens_caps_the_answer_and_says_length(served: Served) -> None:
    completion = served.client().chat.completions.create(
        model="handbook",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=5,
        extra_headers={"X-Session-Id": "cap-1"},
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and 0 < completion.usage.completion_tokens <= 5
    assert (completion.model_extra or {})["assistant"]["route"] == "local"


def test_the_stream_is_framed_as_openai_frames_it(served: Served) -> None:
    """`data: {json}` events separated by one blank line, stage events before the text, the
    cap's finish_reason on the last chunk, then `data: [DONE]`: what OpenAI's SDKs parse."""
    body = {"stream": True, "max_completion_tokens": 5, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream(
        "POST",
        f"{served.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {served.key}", "X-Session-Id": "cap-2"},
        json={"model": "handbook", **body},
        timeout=600,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    assert "\r" not in raw and raw.endswith("\n\ndata: [DONE]\n\n")
    events = raw.split("\n\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events if not e.startswith(":")), raw
    chunks = [json.loads(e[6:]) for e in events[:-1] if e.startswith("data: ")]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    stages = [c["assistant"]["stage"] for c in chunks if "stage" in c.get("assistant", {})]
    assert stages[:2] == ["searching", "thinking"], stages
    first_text = next(i for i, c in enumerate(chunks) if c["choices"][0]["delta"].get("content"))
    assert all("stage" not in c.get("assistant", {}) for c in chunks[first_text:])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "length" and last["usage"]["completion_tokens"] <= 5
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert served.bot.history("dev", "cap-2")[-1].content == text


def test_system_messages_too_long_for_the_prompt_are_a_400_naming_the_message(served: Served) -> None:
    from openai import BadRequestError

    long_system = "Be precise, careful and polite in every answer you give. " * 300  # ~3,000 tokens
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": long_system},
        {"role": "user", "content": QUESTION},
    ]
    sessions = len(served.bot.sessions("dev"))
    with pytest.raises(BadRequestError) as refused:
        served.client().chat.completions.create(model="handbook", messages=messages)
    error = refused.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages.1.content"), error
    assert "tokens" in error["message"] and "limit" in error["message"]
    # Streamed: the same 400, before any event.
    streamed = served.post({"stream": True, "messages": messages})
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "messages.1.content"
    assert len(served.bot.sessions("dev")) == sessions  # refused before the turn: nothing stored


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_tokens", 0), ("max_tokens", -3), ("max_tokens", "5"), ("max_completion_tokens", 2.5)],
)
def test_a_bad_token_cap_is_a_400_naming_its_field(served: Served, field: str, value: object) -> None:
    response = served.post({field: value, "messages": [{"role": "user", "content": QUESTION}]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and error["code"] == "invalid_value"
