"""Chat models behind an OpenAI-compatible endpoint: the large model, or the small one served.

Serving the small model (`llm_base_url`) lets app replicas share one model server
instead of each loading the GGUF. The router needs three things from the small model
that the plain chat API does not all give: per-token log-probabilities (asked for with
`logprobs`), token counts for the prompt budget (llama_cpp.server's
`/extras/tokenize/count`, else an estimate), and JSON constrained by a schema for
fact extraction (`response_format` with a schema).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import urlparse

import httpx
import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr, model_validator

from assistant.capabilities import approximate_tokens
from assistant.errors import ModelUnavailableError
from assistant.llamacpp import usage_chunk

__all__ = ["ChatServedModel", "endpoint_limit", "openai_chat_options", "token_limit"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def token_limit(base_url: str, max_tokens: int) -> dict[str, Any]:
    """How to cap the answer's length on this endpoint.

    langchain-openai sends the limit as `max_completion_tokens`, which OpenAI wants but
    llama_cpp.server and older vLLM / Ollama ignore (they would generate to the context's
    end), so other endpoints get the classic `max_tokens` in the body.
    """
    if urlparse(base_url).hostname == "api.openai.com":
        return {"max_tokens": max_tokens}
    return {"extra_body": {"max_tokens": max_tokens}}


def endpoint_limit(model: BaseChatModel, max_tokens: int) -> dict[str, Any]:
    """Call options capping one answer of a model behind an OpenAI-compatible endpoint (ChatOpenAI or ours)."""
    options = token_limit(str(getattr(model, "openai_api_base", "") or ""), max_tokens)
    if "extra_body" in options:  # a call's extra_body replaces the model's own: keep the rest of it
        chat = model.chat if isinstance(model, ChatServedModel) else model
        options["extra_body"] = {**(getattr(chat, "extra_body", None) or {}), **options["extra_body"]}
    return options


def openai_chat_options(base_url: str, model: str, api_key_env: str, max_tokens: int, timeout: float) -> dict[str, Any]:
    """Keyword arguments for ChatOpenAI pointed at any OpenAI-compatible server."""
    # Local servers (llama_cpp.server, vLLM, Ollama) accept any key; hosted ones need theirs.
    key = os.environ.get(api_key_env) or "unset"
    return {
        "base_url": base_url,
        "model": model,
        "api_key": key,
        "timeout": timeout,
        "temperature": 0,
        **token_limit(base_url, max_tokens),
    }


class ChatServedModel(BaseChatModel):
    """The small model on an OpenAI-compatible server, with what the router reads from it.

    A LangChain chat model of its own (`_generate`, `_stream`, `_llm_type`, the extension
    points LangChain documents for custom models) around a ChatOpenAI that it calls
    through its public `invoke` and `stream`. Pass the client as `chat=ChatOpenAI(...)`,
    or pass ChatOpenAI's own keyword arguments and it builds the client from them.
    """

    chat: ChatOpenAI
    _count_url: str | None = PrivateAttr(default=None)
    _json_style: str | None = PrivateAttr(default=None)
    _counter: Callable[[str], int] = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _client(cls, data: Any) -> Any:
        if isinstance(data, dict) and "chat" not in data:
            return {"chat": ChatOpenAI(**data)}
        return data

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        root = str(self.openai_api_base or "").rstrip("/")
        self._count_url = (root.removesuffix("/v1") + "/extras/tokenize/count") if root else None
        self._counter = lru_cache(maxsize=4096)(self._count_remote)

    @property
    def _llm_type(self) -> str:
        return "served-openai-compatible"

    @property
    def model_name(self) -> str:
        return self.chat.model_name

    @property
    def openai_api_base(self) -> str | None:
        return self.chat.openai_api_base

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "base_url": self.openai_api_base}

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The server's stream, closed by a usage count when the server sends none.

        llama_cpp.server ignores `stream_options.include_usage`; the count is then made
        from the server's tokenizer: the messages' text (the chat template's few tokens
        left out) and one token per log-probability received, else the answer's text.
        """
        usage_seen = False
        answer: list[str] = []
        tokens = 0
        finished = False
        kwargs = self._capped(kwargs)
        for message in self._logprobs_or_not(lambda: self.chat.stream(messages, stop=stop, **kwargs)):
            usage_seen = usage_seen or message.usage_metadata is not None
            metadata = message.response_metadata
            finished = finished or bool(metadata.get("finish_reason"))
            answer.append(message.text)
            tokens += len((metadata.get("logprobs") or {}).get("content") or [])
            if message.chunk_position:  # the client's end of stream; this one may have a usage chunk to add
                message = message.model_copy(update={"chunk_position": None})
            yield ChatGenerationChunk(message=message)
        if not finished:
            # llama_cpp.server by default ends a stream early, without a finish reason, as soon
            # as another request arrives: with several replicas (or clients) answers come back cut.
            raise ModelUnavailableError(
                f"{self.model_name} at {self.openai_api_base}",
                "the server ended the answer's stream without finishing it (another request interrupted it?)",
                "Start python -m llama_cpp.server with --interrupt_requests false when several processes share it",
            )
        if not usage_seen:
            prompt_tokens = sum(self.count_tokens(m.text) for m in messages)
            completion_tokens = tokens or self.count_tokens("".join(answer))
            yield usage_chunk(prompt_tokens, completion_tokens)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs = self._capped(kwargs)

        def call() -> Iterator[BaseMessage]:
            yield self.chat.invoke(messages, stop=stop, **kwargs)

        return ChatResult(generations=[ChatGeneration(message=next(self._logprobs_or_not(call)))])

    def _capped(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A call's `max_tokens` (as ChatLlamaCpp takes it) in the form this endpoint honours."""
        if "max_tokens" not in kwargs:
            return kwargs
        rest = {k: v for k, v in kwargs.items() if k != "max_tokens"}
        return {**rest, **endpoint_limit(self, int(kwargs["max_tokens"]))}

    def _logprobs_or_not(self, call: Callable[[], Iterator[T]]) -> Iterator[T]:
        """The call's output; once again without log-probabilities if the server refuses them.

        llama_cpp.server refuses them unless started with `--logits_all true`. Answers
        still work then, but the router loses its confidence signal: said once, loudly.
        """
        items = call()
        try:
            first = next(items)
        except StopIteration:
            return
        except openai.APIStatusError as exc:
            if not self.chat.logprobs or "logprobs" not in str(exc):
                raise
            log.warning(
                "%s refuses log-probabilities (%s); answers are routed without the model's confidence. "
                "Start llama_cpp.server with --logits_all true to restore it.",
                self.openai_api_base,
                exc,
            )
            self.chat.logprobs, self.chat.top_logprobs = False, None
            items = call()
            first = next(items)
        yield first
        yield from items

    def count_tokens(self, text: str) -> int:
        """Tokens by the server's own tokenizer where it has an endpoint for it, else ~4 characters each."""
        return self._counter(text)

    def _count_remote(self, text: str) -> int:
        if self._count_url is None:
            return approximate_tokens(text)
        try:
            response = httpx.post(self._count_url, json={"input": text, "model": self.model_name}, timeout=10)
            response.raise_for_status()
            return int(response.json()["count"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning(
                "%s has no token counter (%s); prompt budgets use an estimate of 4 characters per token",
                self._count_url,
                exc,
            )
            self._count_url = None
            return approximate_tokens(text)

    def generate_json(self, messages: list[BaseMessage], schema: dict[str, Any], max_tokens: int = 160) -> Any:
        """The model's answer constrained to a JSON schema; None when it is not valid JSON.

        llama_cpp.server takes `json_object` with a `schema`; OpenAI and vLLM take
        `json_schema`. Until one has worked, a refusal of the first (llama_cpp.server
        answers 500 to a format it does not know) moves on to the second.
        """
        styles = [self._json_style] if self._json_style else ["json_object", "json_schema"]
        for style in styles:
            response_format: dict[str, Any] = (
                {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
                if style == "json_schema"
                else {"type": "json_object", "schema": schema}
            )
            try:
                result = self.invoke(
                    messages,
                    response_format=response_format,
                    **token_limit(str(self.openai_api_base or ""), max_tokens),
                )
            except openai.APIStatusError as exc:
                if self._json_style is None and style != styles[-1]:
                    log.info("%s refused response_format %s (%s); trying the next", self.model_name, style, exc)
                    continue
                raise
            self._json_style = style
            if result.response_metadata.get("finish_reason") == "length":
                return None
            try:
                return json.loads(result.text)
            except json.JSONDecodeError:
                return None
        return None
