"""`assistant chat` in a real pseudo-terminal (pexpect), through the real entry point.

A status line shows while a turn works; Ctrl-C cancels an answer at once, even during the
model's prompt evaluation, and not the chat; slash commands are never questions; a second
start resumes the session with its last turns (quote lines kept) and their sources.
The chat runs in a subprocess over the sample handbook the `bot` fixture ingested.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pytest

from assistant import Assistant

PROMPT = "you> "
NEW_SESSION = re.compile(r"New session (\d{8}-\d{6}-[0-9a-f]{8})\.")
TURN_TIMEOUT = 300  # seconds: the real model on two busy cores
CANCEL_WITHIN = 2  # seconds from Ctrl-C to "(cancelled)", whatever the model is doing


def start_chat(data_dir: Path, user: str) -> tuple[pexpect.spawn, str]:
    """The chat, waiting at its first prompt, and what it printed before it."""
    chat = pexpect.spawn(
        sys.executable,
        ["-m", "assistant.cli", "--data-dir", str(data_dir), "chat", "-c", "handbook", "--user", user],
        env=dict(os.environ),
        encoding="utf-8",
        timeout=TURN_TIMEOUT,
        dimensions=(40, 200),
    )
    chat.expect("/help lists the commands; Ctrl-D quits.")
    greeting = chat.before
    chat.expect(PROMPT)
    return chat, greeting


def quits_cleanly(chat: pexpect.spawn) -> None:
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0, chat.before
    assert "Aborted!" not in chat.before and "Traceback" not in chat.before


@pytest.mark.llm
def test_status_line_cancel_sources_quit_and_resume(bot: Assistant, shared_state: Path) -> None:
    user = "pty-chat"
    chat, greeting = start_chat(shared_state, user)
    session = NEW_SESSION.search(greeting)
    assert session is not None, greeting
    session_id = session.group(1)

    chat.sendline("How often is the X200 serviced?")
    chat.expect("searching…")
    chat.expect("thinking…")  # the local model is generating now
    time.sleep(0.5)  # inside llama.cpp's prompt evaluation, one C call of several seconds
    chat.sendintr()
    chat.expect(r"\(cancelled\)", timeout=CANCEL_WITHIN)
    chat.expect(PROMPT)

    chat.sendline("Where do visitors park?")
    chat.expect("searching…")
    chat.expect("thinking…")
    assert "level -1" not in chat.before
    chat.expect("level -1")
    assert "\x1b[Kassistant> " in chat.before  # the status line was erased before the answer
    chat.expect(r"\[1\] faq\.txt")
    chat.expect(PROMPT)

    chat.sendline("/sources")
    chat.expect(r"\[1\] faq\.txt › line 1")
    chat.expect("“[^”]*Visitors park on level -1")  # a quote of the passage itself
    chat.expect(PROMPT)
    chat.sendline("/quit")
    quits_cleanly(chat)

    # The cancelled question left nothing behind; the answered one is stored.
    history = bot.history(user, session_id)
    assert [m.role for m in history] == ["user", "assistant"]
    assert history[0].content == "Where do visitors park?"

    again, greeting = start_chat(shared_state, user)
    assert f"Resuming session {session_id}" in greeting
    assert "you> Where do visitors park?" in greeting
    assert "level -1" in greeting  # the answer of that turn, shortened
    # The answer's quote lines stay lines, indented under its first.
    answer_lines = [line for line in history[1].content.splitlines() if line.strip()]
    assert len(answer_lines) > 1, history[1].content
    indented = re.escape(" " * len("  assistant> ") + " ".join(answer_lines[1].split())[:30])
    assert re.search(r"\n(\x1b\[[0-9;]*m)?" + indented, greeting), greeting
    again.sendline("/sources")  # the stored answer's, before any answer in this run
    again.expect(r"\[1\] faq\.txt › line 1")
    again.expect("“[^”]*Visitors park on level -1")
    again.expect(PROMPT)
    again.sendeof()
    quits_cleanly(again)


@pytest.mark.slow
def test_slash_commands_are_never_questions(bot: Assistant, shared_state: Path) -> None:
    user = "pty-commands"
    chat, greeting = start_chat(shared_state, user)
    first = NEW_SESSION.search(greeting)
    assert first is not None, greeting

    chat.sendline("/help")
    for command in ("/help", "/new", "/sources", "/quit"):
        chat.expect(re.escape(command) + " +[a-z]")
    chat.expect(PROMPT)
    chat.sendline("/what is this")
    chat.expect("Unknown command /what. The commands are: /help, /new, /sources, /quit")
    chat.expect(PROMPT)
    chat.sendline("/sources")
    chat.expect("No answer yet")
    chat.expect(PROMPT)
    chat.sendline("/new")
    chat.expect(NEW_SESSION)
    assert chat.match is not None and chat.match.group(1) != first.group(1)
    chat.expect(PROMPT)

    chat.send("half a question")
    time.sleep(0.3)
    chat.sendintr()  # over a half-typed line: the line goes, the chat stays
    chat.expect(PROMPT)
    chat.sendintr()  # at an empty prompt: quit
    quits_cleanly(chat)
    assert bot.sessions(user) == []  # nothing was asked, so nothing was stored
