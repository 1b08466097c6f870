"""A blocking iterator consumed from asyncio: each step runs in a worker thread.

The way LangChain's default `astream` runs a sync model (`run_in_executor`), with one
addition: closing or cancelling the async iterator closes the sync one, in a thread,
after any step still running there, so a generator holding a lock (llama.cpp's) lets it go.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TypeVar

from langchain_core.runnables.config import run_in_executor

__all__ = ["iterate_in_threads"]

T = TypeVar("T")


async def iterate_in_threads(start: Callable[[], Iterator[T]]) -> AsyncGenerator[T, None]:
    """Yield what `start()` yields; `start` itself (which may raise) also runs in a thread."""
    items = await run_in_executor(None, start)
    step = threading.Lock()  # one thread at a time advances or closes the generator
    done = object()

    def advance() -> object:
        with step:
            return next(items, done)

    def close() -> None:
        with step:  # after a `next` still running in its thread: it stops at its next item
            getattr(items, "close", lambda: None)()

    try:
        while True:
            item = await run_in_executor(None, advance)
            if item is done:
                return
            yield item  # type: ignore[misc]  # not `done`, so a T
    finally:
        # Not awaited: a cancelled task may not wait, and the close must still happen.
        asyncio.get_running_loop().run_in_executor(None, close)
