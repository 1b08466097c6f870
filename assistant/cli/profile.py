"""`--profile`: where a turn's time went, as a small table on stderr after the answer.

One line per stage of the turn (`Reply.timings`), then the work that follows it on a
background worker (learn, summary: waited for here), and above them the process's own
start-up: the interpreter, the imports and the set-up before the turn began, so that a
cold answer's seconds can be told apart from the turn's.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from chains.reply import Reply

__all__ = ["STAGES", "print_profile", "since_start_ms"]

# Reply.timings keys (milliseconds), in turn order, and what each one covers.
STAGES = {
    "load": "waiting for the local model, the embedder and the vector store",
    "recall": "the conversation's recent turns, summary and facts",
    "condense": "a follow-up rewritten as a standalone question",
    "retrieve": "hybrid search",
    "prompt": "evidence and the prompt",
    "first token": "from the turn's start to the first answer text",
    "generate": "the local model's generation",
    "checks": "sentence checks and confidence",
    "large": "the large model",
    "store": "writing the turn to memory",
    "total": "the whole turn, up to the reply",
}
AFTER = {
    "learn": "facts learnt from the turn (after the reply)",
    "summary": "the conversation summary (after the reply)",
}
_IMPORTED = time.perf_counter()  # the fallback start, where /proc is not there


def since_start_ms() -> float:
    """Milliseconds since this process started (on Linux, from /proc; elsewhere since the
    CLI was imported, which leaves out the interpreter's own start)."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time since boot
        return (time.clock_gettime(time.CLOCK_BOOTTIME) - started_s) * 1000
    except (OSError, ValueError, IndexError, AttributeError):
        return (time.perf_counter() - _IMPORTED) * 1000


def print_profile(reply: Reply, *, startup_ms: float | None = None, loads: dict[str, float] | None = None) -> None:
    """The table on stderr. `startup_ms`: the process's time before the turn began; `loads`:
    how long each background load took (ModelLoad.timings), shown under `load`."""
    rows: list[tuple[str, float | None, str]] = []
    if startup_ms is not None:
        rows.append(("start-up", startup_ms, "python, imports and set-up before the turn"))
    for stage, meaning in STAGES.items():
        value = reply.timings.get(_key(stage))
        if value is None:
            continue
        rows.append((stage, value, meaning))
        if stage == "load" and loads:
            done = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(loads.items(), key=lambda item: -item[1]))
            rows.append(("", None, f"loaded alongside the set-up: {done}"))
    after: dict[str, float] = {}
    if reply.after is not None and reply.after.exception() is None:  # a failure there is logged by the worker
        after = reply.after.result().timings
    for stage, meaning in AFTER.items():
        value = after.get(_key(stage))
        if value is not None:
            rows.append((stage, value, meaning))
    width = max(len(name) for name, _, _ in rows)
    sys.stdout.flush()  # the answer first, where both go to one terminal
    out = sys.stderr
    click.secho("profile (milliseconds)", dim=True, file=out)
    for name, value, meaning in rows:
        number = f"{value:8.0f}" if value is not None else " " * 8
        click.secho(f"  {name:<{width}} {number}  {meaning}", dim=True, file=out)


def _key(stage: str) -> str:
    return stage.replace(" ", "_") + "_ms"
