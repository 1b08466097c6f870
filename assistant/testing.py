"""Fakes for tests of code built on the assistant: a chat model and embeddings that load
nothing, download nothing and answer the same way every run.

    bot = build_assistant(Settings(data_dir=tmp_path), llm=FakeChatModel(responses=["Hi."]),
                          embeddings=FakeEmbeddings())

Both are LangChain's own fakes extended with what the assistant reads from a real model
(usage, finish reason, log-probabilities, token counts). Imports only langchain_core,
pydantic and numpy: no model, no store, nothing else of ours. Guide: docs/testing.md.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, model_validator

__all__ = ["FakeChatModel", "FakeEmbeddings", "ScriptExhaustedError"]

# A fake token: a word or a punctuation mark, with the whitespace before it.
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


def _tokens(text: str) -> list[str]:
    tokens = _TOKEN.findall(text)
    rest = text[sum(map(len, tokens)) :]  # trailing whitespace
    return [*tokens, rest] if rest else tokens


class ScriptExhaustedError(RuntimeError):
    """The FakeChatModel was called more often than it has scripted replies."""


class FakeChatModel(GenericFakeChatModel):
    """A chat model that answers from a script, as the assistant's real models do.

    `responses` are returned in order, one per call (the answer, and also the rewrite of
    a follow-up question or a summary when the turn needs one); past the end it raises
    ScriptExhaustedError, or starts again with `cycle=True`. A reply streams word by word
    and ends with usage metadata, a finish reason and `model_name`. With `logprob` set,
    every token carries that log-probability in `response_metadata["logprobs"]`, where
    the router reads the model's confidence (e.g. -3.0 for an unsure model). `stop` and
    `max_tokens` cut the reply as a real model would (finish reason "length").
    `json_responses` are what `generate_json` returns in turn; without them it returns
    None, as a model that cannot decode under a schema does.
    """

    responses: list[str] = Field(default_factory=list)
    cycle: bool = False
    model_name: str = "fake-chat-model"
    logprob: float | None = None
    json_responses: list[Any] = Field(default_factory=list)
    messages: Iterator[AIMessage | str] = Field(default_factory=lambda: iter(()), exclude=True)
    _json_calls: int = 0

    @model_validator(mode="after")
    def _script(self) -> FakeChatModel:
        self.messages = itertools.cycle(self.responses) if self.cycle and self.responses else iter(self.responses)
        return self

    @property
    def _llm_type(self) -> str:
        return "fake-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def count_tokens(self, text: str) -> int:
        """Tokens as this fake splits them: words and punctuation marks."""
        return len(_TOKEN.findall(text))

    def generate_json(self, messages: list[BaseMessage], schema: dict[str, Any], max_tokens: int = 160) -> Any:
        """The next of `json_responses` (a JSON string is parsed); None when there is none."""
        if self._json_calls >= len(self.json_responses):
            return None
        value = self.json_responses[self._json_calls]
        self._json_calls += 1
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return None
        return value

    def _next_reply(self, stop: list[str] | None, max_tokens: int | None) -> tuple[list[str], str]:
        try:
            reply = next(self.messages)
        except StopIteration:
            raise ScriptExhaustedError(
                f"FakeChatModel was called more than its {len(self.responses)} scripted replies; "
                "add replies to `responses`, or pass cycle=True"
            ) from None
        text = reply if isinstance(reply, str) else reply.text
        finish = "stop"
        for word in stop or []:
            text = text.split(word, 1)[0]
        tokens = _tokens(text)
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        return tokens, finish

    def _metadata(self, tokens: list[str], finish: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"model_name": self.model_name, "finish_reason": finish}
        if self.logprob is not None:
            metadata["logprobs"] = {"content": [{"token": t, "logprob": self.logprob} for t in tokens]}
        return metadata

    def _usage(self, messages: list[BaseMessage], tokens: list[str]) -> UsageMetadata:
        prompt = sum(self.count_tokens(m.text) for m in messages)
        return UsageMetadata(input_tokens=prompt, output_tokens=len(tokens), total_tokens=prompt + len(tokens))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tokens, finish = self._next_reply(stop, kwargs.get("max_tokens"))
        message = AIMessage(
            content="".join(tokens),
            usage_metadata=self._usage(messages, tokens),
            response_metadata=self._metadata(tokens, finish),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # GenericFakeChatModel's own stream drops usage and response metadata, which the
        # assistant reads; this one ends like ChatLlamaCpp's: an empty chunk that carries them.
        tokens, finish = self._next_reply(stop, kwargs.get("max_tokens"))
        for token in tokens:
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=self._usage(messages, tokens),
                response_metadata=self._metadata(tokens, finish),
            )
        )


class FakeEmbeddings(DeterministicFakeEmbedding):
    """Embeddings where texts that share words are near: a hashed bag of words.

    Each word gets a fixed random direction (LangChain's DeterministicFakeEmbedding of
    the word); a text is the sum of its words' directions, L2-normalised. Retrieval over
    them ranks a passage by the words it shares with the question, so tests of ingest
    and ask behave as they would with a real embedder, only coarser.
    """

    size: int = 256
    name: str = "fake-bag-of-words"
    normalized: bool = True
    max_tokens: int = 512

    @property
    def dimension(self) -> int:
        return self.size

    def count_tokens(self, text: str) -> int:
        """Tokens as this fake splits them: words and punctuation marks."""
        return len(_TOKEN.findall(text))

    def _embed(self, text: str) -> list[float]:
        words = [w.lower() for w in _WORD.findall(text)][: self.max_tokens] or [text]
        vector = np.sum([_word_vector(w, self.size) for w in words], axis=0)
        norm = float(np.linalg.norm(vector))
        return [float(x) for x in (vector / norm if norm else vector)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@lru_cache(maxsize=65536)
def _word_vector(word: str, size: int) -> Any:
    fake = DeterministicFakeEmbedding(size=size)
    return np.asarray(fake.embed_query(word), dtype=np.float64)
