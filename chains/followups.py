"""Work that follows an answer: learning facts from the question, folding old turns into the summary.

Neither changes the answer already shown, so neither may delay it: they run on one
background thread, in the order the turns ended. A later turn of the same user waits
for that user's pending work before it recalls anything (its facts and summary must
be there, so a conversation reads the same whether it is typed fast or slow), and so
does anything that reads memory through the Assistant. The worker is a plain
ThreadPoolExecutor: the interpreter joins it at exit, so a one-shot `assistant ask`
still stores what it learned after printing the answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

__all__ = ["AfterTurn", "FollowUps"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AfterTurn:
    """What a turn's follow-up work did: the facts it learned, and its stages in milliseconds."""

    remembered: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # learn_ms, summary_ms


Step = Callable[[], list[str] | None]


class FollowUps:
    """One background worker for every turn's follow-up work, waited for per user."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: dict[str, list[Future[AfterTurn]]] = {}
        self._lock = threading.Lock()

    def submit(self, user_id: str, steps: dict[str, Step]) -> Future[AfterTurn]:
        """Runs `steps` (name → callable; a list it returns is facts learned) after everything submitted before."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assistant-after-turn")
            future = self._executor.submit(_run, steps)
            pending = [f for f in self._pending.get(user_id, []) if not f.done()]
            self._pending[user_id] = [*pending, future]
        return future

    def wait(self, user_id: str | None = None) -> None:
        """Until the follow-up work of `user_id` (of everyone, when None) has finished."""
        with self._lock:
            if user_id is None:
                futures = [f for group in self._pending.values() for f in group]
            else:
                futures = list(self._pending.get(user_id, []))
        if futures:
            wait(futures)

    def close(self) -> None:
        """Finishes the pending work, then stops the worker (a later submit starts a new one)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._pending.clear()
        if executor is not None:
            executor.shutdown(wait=True)


def _run(steps: dict[str, Step]) -> AfterTurn:
    remembered: list[str] = []
    timings: dict[str, float] = {}
    for name, step in steps.items():
        start = time.perf_counter()
        try:
            learned = step()
        except Exception:  # the answer is out and stored; one failed follow-up must not hide it
            log.exception("after-turn step %r failed", name)
            learned = None
        timings[f"{name}_ms"] = round((time.perf_counter() - start) * 1000, 1)
        remembered.extend(learned or [])
    return AfterTurn(remembered, timings)
