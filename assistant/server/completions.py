"""OpenAI's chat-completions format: the request we accept and the objects we return.

Read: `model` (a collection), `messages` (the last user message is the new turn; the
`system` and `developer` messages, joined in order, are the caller's instructions, added
to the prompt within its budget), `max_completion_tokens` or `max_tokens` (a cap on the
answer's tokens: `finish_reason` is "length" when the answer stopped at it), `stream`,
`stream_options`, `user`, and our extension `route` ("auto", "local" or "large").
Sampling fields (`temperature`, `top_p`, ...) are accepted and ignored: the router and
the prompt decide them. What OpenAI's format has no field for (the sources, the route
taken and why, the session, the stage a streamed turn is at) travels in the `assistant`
extension field of the completion and of the streamed chunks.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chains.reply import Reply

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "completion",
    "completion_chunk",
    "extension",
    "new_completion_id",
    "session_of",
]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text; a list of content parts (OpenAI's newer form) is joined."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") in ("text", "input_text"))
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


TokenCap = Annotated[StrictInt, Field(ge=1)]  # OpenAI refuses "5" and 5.5 too

INSTRUCTION_ROLES = ("system", "developer")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, ...: accepted, not used

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    max_tokens: TokenCap | None = None  # OpenAI's older name of max_completion_tokens
    max_completion_tokens: TokenCap | None = None
    route: Literal["auto", "local", "large"] = "auto"  # extension: as `assistant ask --route`

    def question(self) -> str:
        """The new turn: the last user message (earlier ones are already in the session)."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""

    def instructions(self) -> str | None:
        """The system and developer messages' text, joined in order; None without any."""
        texts = [m.text().strip() for m in self.messages if m.role in INSTRUCTION_ROLES]
        return "\n\n".join(t for t in texts if t) or None

    def instructions_param(self) -> str:
        """Where a refused instruction text is, for the error's `param`: the longest system message."""
        index = max(
            (i for i, m in enumerate(self.messages) if m.role in INSTRUCTION_ROLES),
            key=lambda i: len(self.messages[i].text()),
            default=0,
        )
        return f"messages.{index}.content"

    def answer_cap(self) -> tuple[int | None, str]:
        """The cap on the answer's tokens and the field it came from; the newer name wins."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens, "max_completion_tokens"
        return self.max_tokens, "max_tokens"


def session_of(request: ChatRequest, header: str | None, key_id: int) -> str:
    """The session a request continues: the X-Session-Id header, else the `user` field, else
    one derived from the conversation's first user message, so that a client resending the
    whole message list at every turn (as OpenAI clients do) stays in one session."""
    if header:
        return header
    if request.user:
        return request.user
    first = next((m.text() for m in request.messages if m.role == "user"), "")
    return "chat-" + hashlib.sha256(f"{key_id}\n{first}".encode()).hexdigest()[:16]


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def extension(reply: Reply, session_id: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "route": reply.route,
        "reason": reply.reason,
        "model": reply.model,
        "low_confidence": reply.low_confidence,
        "evidence": reply.evidence,
        "sources": [{**s.to_dict(), "citation": s.citation} for s in reply.sources],
    }


def usage(reply: Reply) -> dict[str, int]:
    prompt = int(reply.usage.get("prompt_tokens", 0))
    completion_tokens = int(reply.usage.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion_tokens, "total_tokens": prompt + completion_tokens}


def completion(completion_id: str, model: str, reply: Reply, session_id: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.answer},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage(reply),
        "assistant": extension(reply, session_id),
    }


def completion_chunk(
    completion_id: str,
    model: str,
    *,
    content: str | None = None,
    role: bool = False,
    reply: Reply | None = None,
    session_id: str = "",
    stage: str | None = None,
) -> dict[str, Any]:
    """One streamed chunk: a piece of text; (with `stage`) an empty one telling what the turn is
    doing ("searching", "thinking", "escalating"); or (with `reply`) the last one, with usage
    and the extension."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    chunk: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "finish_reason": reply.finish_reason if reply else None, "logprobs": None}
        ],
    }
    if stage is not None:
        chunk["assistant"] = {"stage": stage}
    if reply is not None:
        chunk["usage"] = usage(reply)
        chunk["assistant"] = extension(reply, session_id)
    return chunk
