"""How a turn looks in a terminal: a status line while it works, the answer, its sources and route.

Shared by `ask` and `chat`. The status line ("searching…", "thinking…") follows the
stage chunks of the stream and is erased when the first text arrives; it is drawn only
on a terminal, so piped output holds the answer alone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from chains.reply import Reply, ReplyChunk, Source

__all__ = ["StatusLine", "excerpt", "print_reply", "print_sources", "shorten", "show_turn"]

LABELS = {
    "searching": "searching…",
    "thinking": "thinking…",
    "escalating": "asking the large model…",
    "stopping": "stopping the cancelled answer…",  # chat: its model call ends before the next turn starts
}
_ERASE = "\r\033[K"  # back to the start of the line, and clear it


class StatusLine:
    """One line saying what the turn is doing, redrawn in place; `prefix` is kept in front of it."""

    def __init__(self, stream: TextIO | None, prefix: str = "") -> None:
        self.stream = stream  # None when it is not a terminal: nothing is drawn
        self.prefix = prefix
        self.drawn = False
        self.done = False

    def show(self, stage: str) -> None:
        if self.stream is None or self.done:
            return
        label = click.style(LABELS.get(stage, f"{stage}…"), dim=True)
        self.stream.write(f"{_ERASE}{self.prefix}{label}")
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """Erase the status for good (the answer starts), leaving the prefix."""
        if self.drawn and not self.done and self.stream is not None:
            self.stream.write(f"{_ERASE}{self.prefix}")
            self.stream.flush()
        self.done = True


def show_turn(chunks: Iterable[ReplyChunk], status: StatusLine, *, stream_text: bool) -> Reply:
    """Consume a turn's stream: stages go to the status line, text to stdout (when `stream_text`)."""
    try:
        for chunk in chunks:
            if chunk.stage is not None:
                status.show(chunk.stage)
                continue
            if chunk.text:
                status.clear()
                if stream_text:
                    click.echo(chunk.text, nl=False)
            if chunk.reply is not None:
                return chunk.reply
    finally:
        status.clear()
    raise AssertionError("the turn ended without a reply")


def shorten(text: str, width: int) -> str:
    return textwrap.shorten(" ".join(text.split()), width, placeholder=" …")


def excerpt(text: str, width: int, max_lines: int) -> list[str]:
    """The text's non-blank lines, each shortened to `width`, at most `max_lines` of them
    (an answer's quote lines stay lines of their own)."""
    lines = [shorten(line, width) for line in text.splitlines() if line.strip()]
    return lines if len(lines) <= max_lines else [*lines[: max_lines - 1], "…"]


def print_reply(reply: Reply, *, streamed: bool) -> None:
    """The answer (unless it was streamed), then its sources and route, dimmed."""
    if not streamed:
        click.echo(reply.answer)
    click.echo()
    for number, source in enumerate(reply.sources, start=1):
        click.secho(f"  [{number}] {source.citation}  (score {source.score:.2f})", dim=True)
    flag = " · low confidence" if reply.low_confidence else ""
    who = f" by {reply.model}" if reply.model else ""
    click.secho(f"  route: {reply.route}{who}{flag} — {reply.reason}", dim=True)


def print_sources(sources: list[Source] | None) -> None:
    """Each source of the last answer with its citation and a short quote of the passage;
    None: there is no answer yet."""
    if sources is None:
        click.echo("No answer yet in this chat: ask a question first.")
        return
    if not sources:
        click.echo("The last answer cited no sources.")
        return
    for number, source in enumerate(sources, start=1):
        click.echo(f"[{number}] {source.citation}  (score {source.score:.2f})")
        click.secho(f"    “{shorten(source.snippet, 200)}”", dim=True)
