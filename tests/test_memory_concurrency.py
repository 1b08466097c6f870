"""8 processes write 500 messages each to one database: every row lands, in order, and no
"database is locked" reaches a caller. Run against SQLite (one file) and PostgreSQL."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from memory import SQLMemory, create_memory_engine

ROOT = Path(__file__).resolve().parents[1]
WRITERS = 8
TURNS = 250  # 500 messages per writer


def run_writers(url: str, user: str, writers: int = WRITERS, turns: int = TURNS) -> list[float]:
    SQLMemory(create_memory_engine(url)).engine.dispose()  # schema ready before the race starts
    start_at = time.time() + 3.0  # every writer has loaded its modules by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.memory_writer", url, user, str(w), str(turns), str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    failures = [
        f"writer {w}: {err[-2000:]}" for w, (p, (_, err)) in enumerate(zip(procs, outputs, strict=True)) if p.returncode
    ]
    assert failures == [], failures
    assert not any("locked" in err for _, err in outputs)
    return [float(out.strip().splitlines()[-1]) for out, _ in outputs]


def check_every_row_in_order(memory: SQLMemory, user: str) -> None:
    sessions = {s.session_id: memory.messages(user, s.session_id) for s in memory.sessions(user)}
    assert sum(len(m) for m in sessions.values()) == WRITERS * TURNS * 2
    assert set(sessions) == {"shared"} | {f"own-{w}" for w in range(WRITERS)}
    for name, messages in sessions.items():
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1)), name
        turns_seen: dict[int, list[int]] = defaultdict(list)
        for question, answer in zip(messages[::2], messages[1::2], strict=True):
            w, t = map(int, re.match(r"w(\d+) t(\d+) question", question.content).groups())  # type: ignore[union-attr]
            assert (question.role, answer.role) == ("user", "assistant")
            assert answer.content == f"w{w} t{t} answer"  # a turn's two messages are never split
            turns_seen[w].append(t)
        for w, ts in turns_seen.items():
            assert ts == sorted(ts), f"{name}: writer {w}'s turns out of order"
    assert len(sessions["shared"]) == WRITERS * (TURNS // 2) * 2


@pytest.mark.slow
def test_eight_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    run_writers(url, "load")
    check_every_row_in_order(SQLMemory(create_memory_engine(url)), "load")


@pytest.mark.postgres
def test_eight_processes_on_postgres(postgres_url: str) -> None:
    user = f"load-{uuid.uuid4().hex[:8]}"
    run_writers(postgres_url, user)
    memory = SQLMemory(create_memory_engine(postgres_url))
    check_every_row_in_order(memory, user)
    memory.delete_user(user)
