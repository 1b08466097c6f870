"""The `assistant chat` loop: a prompt with line editing, streamed turns and slash commands.

Ctrl-C while an answer is written cancels that answer (its stream is closed, so nothing
of it is stored) and returns to the prompt; Ctrl-C or Ctrl-D at an empty prompt quits.
A line starting with "/" is a command and never a question.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import click

from assistant.cli.session_ids import new_session_id
from assistant.cli.turn_display import StatusLine, print_reply, print_sources, shorten, show_turn
from assistant.errors import UnknownSessionError, UserError

if TYPE_CHECKING:
    from assistant.core import Assistant
    from chains.reply import Reply, ReplyChunk
    from chains.route import RequestedRoute
    from memory.records import StoredMessage

__all__ = ["COMMANDS", "Chat"]

PROMPT = "you> "
SPEAKER = "assistant> "
RESUMED_TURNS = 3  # question-and-answer pairs shown when a session is resumed
COMMANDS = {
    "/help": "list these commands",
    "/new": "start a fresh session",
    "/sources": "the last answer's sources, with a quote of each passage",
    "/quit": "leave the chat (also /exit, or Ctrl-D at an empty prompt)",
}
_QUIT = ("/quit", "/exit")


@dataclass
class Chat:
    """One user's chat in one session at a time (/new moves it to a fresh one)."""

    bot: Assistant
    user_id: str
    session_id: str
    collection: str | None
    route: RequestedRoute
    last: Reply | None = None

    def run(self) -> None:
        readline = _line_editor()
        self._greet()
        while True:
            line = self._read(readline)
            if line is None:
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if line.split()[0].lower() in _QUIT:
                    return
                self._command(line)
            else:
                self._turn(line)

    def _greet(self) -> None:
        try:
            history = self.bot.history(self.user_id, self.session_id)
        except UnknownSessionError:  # a new id: stored with its first turn
            history = []
        if history:
            click.secho(
                f"Resuming session {self.session_id} ({len(history)} messages; /new starts a fresh one).", dim=True
            )
            for message in _last_turns(history):
                who = PROMPT if message.role == "user" else SPEAKER
                click.secho(f"  {who}{shorten(message.content, 240)}", dim=True)
        else:
            click.secho(f"New session {self.session_id}.", dim=True)
        click.secho("Ask about your documents. /help lists the commands; Ctrl-D quits.", dim=True)

    def _read(self, readline: ModuleType | None) -> str | None:
        """The next line, "" to start over, or None to quit."""
        try:
            return input(PROMPT)
        except EOFError:
            click.echo()
            return None
        except KeyboardInterrupt:
            click.echo()
            # Ctrl-C over a half-typed line discards the line, as shells do; on an empty one it quits.
            return "" if readline is not None and readline.get_line_buffer() else None

    def _command(self, line: str) -> None:
        name = line.split()[0].lower()
        if name == "/help":
            click.echo("Commands:")
            for command, what in COMMANDS.items():
                click.echo(f"  {command:<10} {what}")
            click.echo("Ctrl-C while an answer is written cancels it.")
        elif name == "/new":
            self.session_id, self.last = new_session_id(), None
            click.echo(f"New session {self.session_id}.")
        elif name == "/sources":
            print_sources(self.last)
        else:
            click.echo(f"Unknown command {name}. The commands are: {', '.join(COMMANDS)} (and /exit).")

    def _turn(self, question: str) -> None:
        terminal = sys.stdout.isatty()
        status = StatusLine(sys.stdout if terminal else None, prefix=SPEAKER)
        click.echo(SPEAKER, nl=False)
        status.show("searching")  # from the moment Enter is pressed, before the stream's own first stage
        chunks: Iterator[ReplyChunk] | None = None
        try:
            chunks = self.bot.stream(
                question,
                user_id=self.user_id,
                session_id=self.session_id,
                collection=self.collection,
                route=self.route,
            )
            reply = show_turn(chunks, status, stream_text=True)
        except KeyboardInterrupt:
            if isinstance(chunks, Generator):
                chunks.close()
            click.echo()
            click.secho("(cancelled)", dim=True)
            return
        except UserError as exc:
            click.echo()
            click.secho(f"error: {exc}", fg="red", err=True)
            return
        click.echo()
        print_reply(reply, streamed=True)
        self.last = reply


def _last_turns(history: list[StoredMessage]) -> list[StoredMessage]:
    """The messages from the RESUMED_TURNS-th last question on."""
    questions = [i for i, message in enumerate(history) if message.role == "user"]
    return history[questions[-RESUMED_TURNS] :] if len(questions) >= RESUMED_TURNS else history


def _line_editor() -> ModuleType | None:
    """readline, when there is one: importing it gives input() editing and history."""
    try:
        import readline
    except ImportError:  # not on every platform (Windows)
        return None
    return readline
