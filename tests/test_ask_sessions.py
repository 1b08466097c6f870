"""Every `assistant ask` is a new session unless --session or --continue says otherwise.

Through the real entry point, with the real model, over the handbook the `bot` fixture
ingested; what each call stored is read back from the memory database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner

from assistant import Assistant
from assistant.cli import cli

SESSION_LINE = re.compile(r"session (\d{8}-\d{6}-[0-9a-f]{4}) · follow up with --continue")


def ask(data_dir: Path, user: str, question: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "assistant.cli", "--data-dir", str(data_dir), "ask", question]
    result = subprocess.run(
        [*command, "-c", "handbook", "--user", user, "--route", "local", *options],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "searching…" not in result.stdout + result.stderr  # no status line when not in a terminal
    return result


def ask_in_terminal(data_dir: Path, user: str, question: str, *options: str) -> str:
    """What a terminal shows of one `ask` (stdout and stderr together)."""
    arguments = ["-m", "assistant.cli", "--data-dir", str(data_dir), "ask", question, "-c", "handbook"]
    terminal = pexpect.spawn(
        sys.executable,
        [*arguments, "--user", user, "--route", "local", *options],
        env=dict(os.environ),
        encoding="utf-8",
        timeout=600,
    )
    terminal.expect(pexpect.EOF)
    terminal.close()
    assert terminal.exitstatus == 0, terminal.before
    return str(terminal.before)


def session_of(result: subprocess.CompletedProcess[str]) -> str:
    found = SESSION_LINE.search(result.stdout)
    assert found is not None, result.stdout
    return found.group(1)


@pytest.mark.llm
def test_each_ask_is_a_new_session_unless_continued(bot: Assistant, shared_state: Path) -> None:
    user = "asker"
    # --continue before the user has any session starts one, and says so.
    started = ask(shared_state, user, "Where do visitors park?", "--json", "--continue")
    assert "has no session yet: starting a new one" in started.stderr
    first = json.loads(started.stdout)
    assert "level -1" in first["answer"]
    first_id = first["session_id"]
    assert first["user_id"] == user

    unrelated = "What is the extension for building security?"
    second = ask(shared_state, user, unrelated)
    second_id = session_of(second)
    assert "5555" in second.stdout
    assert second_id != first_id
    assert {s.session_id: s.message_count for s in bot.sessions(user)} == {first_id: 2, second_id: 2}
    asked = bot.history(user, second_id)[0]
    assert asked.content == unrelated
    assert asked.signals.get("standalone_question", unrelated) == unrelated  # not read as a follow-up

    follow_up = ask(shared_state, user, "When is the office building open?", "--continue")
    assert session_of(follow_up) == second_id  # the latest session
    named = ask_in_terminal(shared_state, user, "Where do staff park?", "--session", first_id)
    # The status line on stderr, then erased, then the answer and its sources.
    assert named.index("searching…") < named.rindex("\x1b[K") < named.index("[1] faq.txt")
    found = SESSION_LINE.search(named)
    assert found is not None and found.group(1) == first_id
    counts = {s.session_id: s.message_count for s in bot.sessions(user)}
    assert counts == {first_id: 4, second_id: 4}
    latest = bot.latest_session(user)
    assert latest is not None and latest.session_id == first_id


@pytest.mark.slow
def test_continue_and_session_are_one_choice(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(cli, ["--data-dir", str(tmp_path), "ask", "x", "--session", "s1", "--continue"])
    assert both.exit_code == 2 and "give one of them" in both.output
    chat = runner.invoke(cli, ["--data-dir", str(tmp_path), "chat", "--session", "s1", "--new"])
    assert chat.exit_code == 2 and "give one of them" in chat.output
    help_text = runner.invoke(cli, ["ask", "--help"]).output
    assert "--continue" in help_text and "-c is --collection" in help_text
