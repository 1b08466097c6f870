"""`--profile`: after the answer, stderr shows how long each stage of the turn took, with the
process's own start-up above them, through the real entry point, the real model and embedder.

The commands run in subprocesses over the sample handbook the `bot` fixture ingested. Only
the names of the stages and that each has a number are checked, never a duration.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import Assistant

pytestmark = pytest.mark.slow

# Every turn has these; condense, large (escalated turns only), learn and summary appear when they ran.
TURN_STAGES = ("load", "recall", "retrieve", "prompt", "first token", "generate", "checks", "store", "total")


def assistant(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "assistant.cli", "--data-dir", str(data_dir), *args]
    done = subprocess.run(command, capture_output=True, text=True, input=stdin, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def profiled(stderr: str) -> dict[str, int]:
    """The stages of the profile tables on stderr, each with its number (the last table wins)."""
    assert "profile (milliseconds)" in stderr, stderr
    rows = re.findall(r"^  (\S+(?: token)?) +(\d+)  ", stderr, flags=re.MULTILINE)
    return {name: int(value) for name, value in rows}


def test_ask_profile_shows_start_up_and_every_stage_with_a_number(shared_state: Path, bot: Assistant) -> None:
    done = assistant(shared_state, "ask", "How often is the X200 serviced?", "-c", "handbook", "--profile")
    assert "500 operating hours" in done.stdout and "profile" not in done.stdout  # the table is on stderr
    stages = profiled(done.stderr)
    assert {"start-up", *TURN_STAGES} <= set(stages), done.stderr
    order = list(stages)
    assert order[0] == "start-up" and order.index("load") < order.index("generate") < order.index("total")
    # The first turn of a process waited for the models it loaded in the background, and says which.
    loaded = re.search(r"loaded alongside the set-up: (.*)$", done.stderr, flags=re.MULTILINE)
    assert loaded is not None, done.stderr
    assert {"model", "embedder", "vector store"} <= {part.rsplit(" ", 1)[0] for part in loaded.group(1).split(", ")}


def test_ask_without_profile_prints_no_table(shared_state: Path, bot: Assistant) -> None:
    done = assistant(shared_state, "ask", "How often is the X200 serviced?", "-c", "handbook")
    assert "profile (milliseconds)" not in done.stderr + done.stdout


def test_ask_json_keeps_its_output_json_and_carries_the_timings(shared_state: Path, bot: Assistant) -> None:
    done = assistant(shared_state, "ask", "How often is the X200 serviced?", "-c", "handbook", "--json", "--profile")
    reply = json.loads(done.stdout)
    assert {f"{stage.replace(' ', '_')}_ms" for stage in TURN_STAGES} <= set(reply["timings"])
    assert {"start-up", *TURN_STAGES} <= set(profiled(done.stderr))


def test_chat_profiles_each_answer_until_told_to_stop(shared_state: Path, bot: Assistant) -> None:
    questions = "How often is the X200 serviced?\n/profile\nWhat is the X200's warranty?\n/quit\n"
    done = assistant(shared_state, "chat", "-c", "handbook", "--new", "--profile", stdin=questions)
    assert done.stderr.count("profile (milliseconds)") == 1  # the first answer; /profile turned it off
    assert set(TURN_STAGES) <= set(profiled(done.stderr))
    assert "Profile off." in done.stdout
