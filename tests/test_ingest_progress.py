"""Ingest progress that moves: events per file read and per chunk batch embedded and written,
in order and never going back, and the bar of `assistant ingest` redrawn with them in a
terminal (and silent anywhere else)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from retrievers.report import EMBEDDING, LOADING_EMBEDDER, PHASES, READING, SCANNING, WRITING, IngestProgress

pytestmark = pytest.mark.slow

ASSISTANT = Path(sys.executable).parent / "assistant"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]")


def manuals(folder: Path, files: int = 4, paragraphs: int = 80) -> Path:
    """`files` manuals of a dozen chunks or so each."""
    folder.mkdir()
    for n in range(files):
        text = "\n\n".join(
            f"Valve V{n}-{p} opens at {p} bar and closes after {3 * p} seconds of flow in line {n}."
            for p in range(1, paragraphs)
        )
        (folder / f"manual_{n}.txt").write_text(text)
    return folder


def test_events_come_per_file_and_per_batch_and_never_go_back(tmp_path: Path) -> None:
    # Batches of 8 chunks, embedded 2 at a time: a file takes more than one batch.
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state", embedding_batch_size=2))
    folder = manuals(tmp_path / "docs")
    events: list[IngestProgress] = []
    report = bot.ingest(folder, "manuals", on_progress=events.append)
    assert report.files_new == 4 and report.chunks_added > 30

    assert events[0].phase == SCANNING and {e.phase for e in events} <= set(PHASES)
    phases = [e.phase for e in events]
    assert phases.index(READING) < phases.index(LOADING_EMBEDDER) < phases.index(EMBEDDING)
    # Every file is announced as it starts being read, before any of its chunks is embedded.
    announced: set[str] = set()
    for event in events:
        if event.phase == READING:
            announced.add(event.path)
        elif event.phase in (EMBEDDING, WRITING):
            assert event.path in announced, (event, announced)
    assert announced == {f"manual_{n}.txt" for n in range(4)}

    # Progress inside the first file, before it is finished: batch by batch.
    first = [e for e in events if e.files_done == 0]
    written = sorted({e.chunks_added for e in first})
    assert len(written) >= 2 and written[-1] >= 8, written  # at least one batch written before file 1 is done
    embedding = [(e.batch_done, e.batch_total) for e in first if e.phase == EMBEDDING]
    assert embedding[:3] == [(2, 8), (4, 8), (6, 8)]  # each slice of the batch as it is embedded

    # Monotonic: files done, chunks written; the total is known from the first file on.
    for key in ("files_done", "chunks_added"):
        values = [getattr(e, key) for e in events]
        assert values == sorted(values), key
    assert {e.files_total for e in events[1:]} == {4}
    last = events[-1]
    assert (last.phase, last.files_done, last.chunks_added) == (WRITING, 4, report.chunks_added)
    assert last.chunks_per_second > 0

    # A sync with nothing to do says it scanned, and nothing else.
    again: list[IngestProgress] = []
    assert bot.ingest(folder, "manuals", on_progress=again.append).chunks_added == 0
    assert [e.phase for e in again] == [SCANNING]


def run_in_terminal(args: list[str], env: dict[str, str]) -> tuple[str, int]:
    import pexpect

    child = pexpect.spawn(
        str(ASSISTANT), args, env=env, dimensions=(30, 160), encoding="utf-8", codec_errors="replace", timeout=300
    )
    output = child.read()  # until the command exits
    child.close()
    return output, child.exitstatus


def test_the_ingest_bar_moves_in_a_terminal_and_stays_out_of_pipes(tmp_path: Path) -> None:
    folder = manuals(tmp_path / "docs", files=3, paragraphs=60)
    env = {**os.environ, "TERM": "xterm-256color", "ASSISTANT_EMBEDDING_BATCH_SIZE": "2", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    state = str(tmp_path / "state")
    output, status = run_in_terminal(["--data-dir", state, "ingest", str(folder), "-c", "manuals"], env)
    assert status == 0, output
    frames = [ANSI.sub("", line).strip() for line in re.split(r"[\r\n]+", output)]
    bars = list(dict.fromkeys(f for f in frames if "ingesting" in f))
    assert len(bars) >= 2, output  # the bar was redrawn as the run moved
    shown = " ".join(bars)
    for phase in (READING, EMBEDDING):
        assert phase in shown, bars
    assert re.search(r"batch \d+/8", shown) and "chunks written" in shown, bars
    assert "manuals: files 3 new" in output  # then the report

    # Not a terminal: the JSON on stdout parses, and stderr carries no bar.
    (folder / "manual_0.txt").write_text("Valve V9 opens at 9 bar.")
    piped = subprocess.run(
        [str(ASSISTANT), "--data-dir", state, "ingest", str(folder), "-c", "manuals", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(piped.stdout)["files"]["changed"] == 1
    assert "ingesting" not in piped.stderr and "\x1b[" not in piped.stderr
