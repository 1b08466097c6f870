"""Turns of the HTTP API: admitted up to a limit, run to their end in a worker thread,
their chunks handed to the event loop and turned into server-sent events (framed by
sse-starlette's EventSourceResponse: `data: {...}` events, then `data: [DONE]`, as
OpenAI streams them).

A turn keeps running if its client goes away, so the session always holds the whole
answer and the model's lock is never left held by an abandoned stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from assistant.errors import AssistantError
from assistant.server.completions import completion_chunk
from assistant.server.errors import ApiError, from_assistant_error
from chains.reply import ReplyChunk

__all__ = ["Admission", "Turn", "sse"]

log = logging.getLogger("assistant.server")


class Admission:
    """How many turns are in flight, across the threads that run them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self._count >= self.limit:
                raise ApiError(
                    503,
                    f"The assistant is answering {self._count} questions already; retry in a few seconds.",
                    kind="server_error",
                    code="overloaded",
                    headers={"Retry-After": "5"},
                )
            self._count += 1

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


_DONE = object()


class Turn:
    """One turn run to its end in a worker thread; its chunks reach the event loop through a queue."""

    def __init__(self, start: Callable[[], Iterator[ReplyChunk]], admission: Admission) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.admission = admission
        self._first: object = None
        threading.Thread(target=self._run, args=(start,), daemon=True, name="assistant-turn").start()

    def _run(self, start: Callable[[], Iterator[ReplyChunk]]) -> None:
        try:
            for chunk in start():
                self.loop.call_soon_threadsafe(self.queue.put_nowait, chunk)
            self.loop.call_soon_threadsafe(self.queue.put_nowait, _DONE)
        except BaseException as exc:  # handed to the request, which turns it into an error body
            self.loop.call_soon_threadsafe(self.queue.put_nowait, exc)
        finally:
            self.admission.leave()

    async def started(self) -> None:
        """Wait for the turn's first chunk (raising what failed before it) and keep it for `chunks`."""
        self._first = await self.queue.get()
        if isinstance(self._first, BaseException):
            raise self._first

    async def _next(self) -> object:
        if self._first is not None:
            item, self._first = self._first, None
            return item
        return await self.queue.get()

    async def chunks(self) -> AsyncIterator[ReplyChunk]:
        while True:
            item = await self._next()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, ReplyChunk)
            yield item

    async def reply(self) -> Any:
        async for chunk in self.chunks():
            if chunk.reply is not None:
                return chunk.reply
        raise ApiError(500, "The turn ended without an answer.", kind="server_error")


async def sse(
    turn: Turn, completion_id: str, model: str, session_id: str, request_id: str
) -> AsyncIterator[dict[str, str]]:
    """The turn as OpenAI's chunk events, for EventSourceResponse. A stage of the turn is an
    empty chunk whose `assistant.stage` names it; a failure after the first chunk, an error event."""

    def event(payload: dict[str, Any]) -> dict[str, str]:
        return {"data": json.dumps(payload, ensure_ascii=False)}

    yield event(completion_chunk(completion_id, model, role=True, content=""))
    try:
        async for chunk in turn.chunks():
            if chunk.reply is not None:
                yield event(
                    completion_chunk(completion_id, model, content="", reply=chunk.reply, session_id=session_id)
                )
            elif chunk.stage is not None:
                yield event(completion_chunk(completion_id, model, stage=chunk.stage))
            elif chunk.text:
                yield event(completion_chunk(completion_id, model, content=chunk.text))
    except AssistantError as exc:
        yield event(from_assistant_error(exc).body(request_id))
    except Exception:
        log.exception("%s: the turn failed", request_id)
        yield event(ApiError(500, "The turn failed; see the server log.", kind="server_error").body(request_id))
    yield {"data": "[DONE]"}
