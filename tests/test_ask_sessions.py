"""Every `assistant ask` is a new session unless --session or --continue says otherwise;
a resumed session goes on in its collection; `chat` checks its collection before it starts.

Through the real entry point, with the real model, over the handbook the `bot` fixture
ingested (or, where a second collection is needed, a data directory of their own); what
each call stored is read back from the memory database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from click.testing import CliRunner

from assistant import Assistant, Settings
from assistant.cli import cli
from tests.conftest import HANDBOOK

SESSION_LINE = re.compile(r"session (\d{8}-\d{6}-[0-9a-f]{8}) · follow up with --continue")


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


def run_cli(data_dir: Path, *arguments: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real entry point, as a user runs it, with `stdin` typed in."""
    command = [sys.executable, "-m", "assistant.cli", "--data-dir", str(data_dir), *arguments]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=dict(os.environ), timeout=600)


def stored_session(bot: Assistant, user: str, collection: str) -> str:
    """A question and its answer from `collection`, stored as a turn stores them; returns the session id."""
    answer = "Visitors park on level -1.\n\n> “Visitors park on level -1 and must register at reception.” — faq.txt"
    source = {"file": "faq.txt", "location": "line 3", "snippet": "Visitors park on level -1.", "score": 0.8}
    signals = {"collection": collection}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Where do visitors park?", "signals": {}},
        {"role": "assistant", "content": answer, "route": "local", "sources": [source], "signals": signals},
    ]
    document = {
        "format": "assistant-session",
        "version": 1,
        "user_id": user,
        "session_id": "parking",
        "messages": [
            {"seq": seq, "token_count": 10, "created_at": "2026-01-05T09:00:00", **message}
            for seq, message in enumerate(messages, start=1)
        ],
    }
    return bot.import_session(document)[1]


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


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory: pytest.TempPathFactory) -> tuple[Assistant, Path]:
    """The handbook, and a second collection, so that none is the default."""
    data_dir = tmp_path_factory.mktemp("two-collections")
    bot = Assistant.from_settings(Settings(data_dir=data_dir))
    assert bot.ingest(HANDBOOK, collection="handbook").files_failed == []
    bot.create_collection("notes")
    return bot, data_dir


@pytest.mark.slow
def test_chat_checks_its_collection_before_it_starts(two_collections: tuple[Assistant, Path]) -> None:
    _, data_dir = two_collections
    misspelt = run_cli(data_dir, "chat", "-c", "handbok", "--user", "typo", stdin="Where do visitors park?\n")
    assert misspelt.returncode == 2, misspelt.stderr
    assert "collection 'handbok' does not exist; did you mean 'handbook'?" in misspelt.stderr
    assert "session" not in misspelt.stdout  # it stopped before greeting

    unnamed = run_cli(data_dir, "chat", "--user", "typo", "--new", stdin="Where do visitors park?\n")
    assert unnamed.returncode == 2, unnamed.stderr
    assert "no collection was named, and there are several (handbook, notes)" in unnamed.stderr


@pytest.mark.slow
def test_resumed_chat_goes_on_in_its_collection(two_collections: tuple[Assistant, Path]) -> None:
    bot, data_dir = two_collections
    session_id = stored_session(bot, "returning-chat", "handbook")
    resumed = run_cli(data_dir, "chat", "--user", "returning-chat", stdin="/sources\n")
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming session {session_id}" in resumed.stdout
    # The answer's quote line keeps a line of its own, indented under the answer.
    assert "\n" + " " * len("  assistant> ") + "> “Visitors park on level -1" in resumed.stdout
    assert "[1] faq.txt › line 3" in resumed.stdout  # /sources: the stored answer's


@pytest.mark.llm
def test_a_continued_ask_goes_on_in_its_collection(two_collections: tuple[Assistant, Path]) -> None:
    bot, data_dir = two_collections
    user = "returning"
    session_id = stored_session(bot, user, "handbook")
    follow_up = run_cli(data_dir, "ask", "And where do staff park?", "--continue", "--user", user, "--route", "local")
    assert follow_up.returncode == 0, follow_up.stderr
    assert f"session {session_id} · follow up" in follow_up.stdout
    assert "[1] faq.txt" in follow_up.stdout
    answer = bot.history(user, session_id)[-1]
    assert answer.role == "assistant" and answer.signals.get("collection") == "handbook"
