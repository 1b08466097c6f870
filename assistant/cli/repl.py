"""The `assistant chat` loop: a prompt with line editing, streamed turns and slash commands.

Ctrl-C while a turn works cancels it at once and returns to the prompt: the turn runs in
a worker thread (see TurnThread), whose stream is closed at its next chunk, so nothing of
it is stored. Ctrl-C or Ctrl-D at an empty prompt quits. A line starting with "/" is a
command and never a question.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

import click

from assistant.cli.profile import print_profile
from assistant.cli.session_ids import new_session_id
from assistant.cli.turn_display import StatusLine, excerpt, print_reply, print_sources, show_turn
from assistant.errors import UnknownSessionError, UserError

if TYPE_CHECKING:
    from assistant.core import Assistant
    from assistant.factory import ModelLoad
    from chains.reply import ReplyChunk, Source
    from chains.route import RequestedRoute
    from memory.records import StoredMessage

__all__ = ["COMMANDS", "Chat", "TurnThread"]

PROMPT = "you> "
SPEAKER = "assistant> "
RESUMED_TURNS = 3  # question-and-answer pairs shown when a session is resumed
RESUMED_LINES = 6  # lines shown of each resumed message
COMMANDS = {
    "/help": "list these commands",
    "/new": "start a fresh session",
    "/sources": "the last answer's sources, with a quote of each passage",
    "/quit": "leave the chat (also /exit, or Ctrl-D at an empty prompt)",
    "/profile": "after each answer, how long each stage took (again: stop)",
}
_QUIT = ("/quit", "/exit")
_POLL = 0.1  # seconds the main thread waits on the worker at a time: how soon Ctrl-C is seen


class TurnThread:
    """A turn's stream, iterated in a worker thread that hands its chunks over a queue.

    llama.cpp evaluates a prompt in one C call lasting seconds, and Python runs a signal
    handler only in the main thread between bytecodes: were the turn iterated there,
    Ctrl-C would wait for that call. The main thread only waits on the queue, so it acts
    on Ctrl-C at once; `cancel` makes the worker close the stream at its next chunk,
    which stores nothing and releases the model."""

    def __init__(self, chunks: Iterator[ReplyChunk]) -> None:
        self._queue: queue.Queue[ReplyChunk | Exception | None] = queue.Queue()  # None: the stream ended
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(chunks,), name="chat-turn", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[ReplyChunk]:
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def cancel(self) -> None:
        self._cancelled.set()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self) -> None:
        """Until the worker has closed the stream; Ctrl-C interrupts the wait, not the worker."""
        while self._thread.is_alive():
            self._thread.join(_POLL)

    def _pump(self, chunks: Iterator[ReplyChunk]) -> None:
        try:
            for chunk in chunks:
                if self._cancelled.is_set():
                    break
                self._queue.put(chunk)
        except Exception as exc:  # raised again in the main thread, which shows or reports it
            self._queue.put(exc)
        finally:
            if isinstance(chunks, Generator):
                chunks.close()
            self._queue.put(None)


@dataclass
class Chat:
    """One user's chat in one session at a time (/new moves it to a fresh one)."""

    bot: Assistant
    user_id: str
    session_id: str
    collection: str | None
    route: RequestedRoute
    sources: list[Source] | None = None  # the last answer's, None before any answer
    worker: TurnThread | None = field(default=None, repr=False)  # the latest turn's, cancelled or not
    profile: bool = False  # print each turn's stages after its answer (--profile, /profile)
    load: ModelLoad | None = field(default=None, repr=False)  # the models' background load, for the profile

    def run(self) -> None:
        readline = _line_editor()
        self._greet()
        while True:
            line = self._read(readline)
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if line.split()[0].lower() in _QUIT:
                    break
                self._command(line)
            else:
                self._turn(line)
        self._leave()

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
                _show_stored(message)
            self.sources = _last_sources(history)
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
            click.echo("Ctrl-C while an answer is on its way cancels it.")
        elif name == "/new":
            self.session_id, self.sources = new_session_id(), None
            click.echo(f"New session {self.session_id}.")
        elif name == "/sources":
            print_sources(self.sources)
        elif name == "/profile":
            self.profile = not self.profile
            click.echo(f"Profile {'on' if self.profile else 'off'}.")
        else:
            click.echo(f"Unknown command {name}. The commands are: {', '.join(COMMANDS)} (and /exit).")

    def _turn(self, question: str) -> None:
        status = StatusLine(sys.stdout if sys.stdout.isatty() else None, prefix=SPEAKER)
        click.echo(SPEAKER, nl=False)
        status.show("searching")  # from the moment Enter is pressed, before the stream's own first stage
        try:
            self._finish_cancelled(status)
            chunks = self.bot.stream(
                question,
                user_id=self.user_id,
                session_id=self.session_id,
                collection=self.collection,
                route=self.route,
            )
            self.worker = TurnThread(chunks)
            reply = show_turn(self.worker, status, stream_text=True)
        except KeyboardInterrupt:
            if self.worker is not None:
                self.worker.cancel()
            click.echo()
            click.secho("(cancelled)", dim=True)
            return
        except UserError as exc:
            click.echo()
            click.secho(f"error: {exc}", fg="red", err=True)
            return
        click.echo()
        print_reply(reply, streamed=True)
        self.sources = reply.sources
        if self.profile:
            loaded = reply.timings.get("load_ms", 0.0) >= 1.0  # this turn waited for the models
            print_profile(reply, loads=self.load.timings if loaded and self.load is not None else None)

    def _finish_cancelled(self, status: StatusLine) -> None:
        """Wait for a cancelled turn's worker to close its stream: one turn uses the model at a time."""
        if self.worker is None or not self.worker.running():
            return
        status.show("stopping")
        self.worker.wait()
        status.show("searching")

    def _leave(self) -> None:
        """Let a cancelled turn's worker close its stream before the process ends; Ctrl-C leaves at once."""
        if self.worker is None or not self.worker.running():
            return
        status = StatusLine(sys.stdout if sys.stdout.isatty() else None)
        status.show("stopping")
        try:
            self.worker.wait()
        except KeyboardInterrupt:
            pass
        finally:
            status.clear()
            click.echo()


def _show_stored(message: StoredMessage) -> None:
    """A resumed message, dimmed: its first line after the speaker, the others indented under it."""
    who = PROMPT if message.role == "user" else SPEAKER
    for number, line in enumerate(excerpt(message.content, 240, RESUMED_LINES)):
        click.secho(f"  {who if number == 0 else ' ' * len(who)}{line}", dim=True)


def _last_sources(history: list[StoredMessage]) -> list[Source] | None:
    """The sources of the last stored answer, for /sources before this chat's first answer."""
    from chains.reply import Source

    answers = [message for message in history if message.role == "assistant"]
    if not answers:
        return None
    # Read field by field: an imported session's sources may come from another version.
    return [
        Source(
            file=str(stored.get("file", "")),
            location=str(stored.get("location", "")),
            snippet=str(stored.get("snippet", "")),
            score=float(stored.get("score") or 0.0),
            chunk_id=str(stored.get("chunk_id", "")),
        )
        for stored in answers[-1].sources
        if isinstance(stored, dict)
    ]


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
