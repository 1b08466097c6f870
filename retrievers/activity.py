"""What a parser is doing right now ("OCR page 3 (3/50) · 2.1 s/page"), seen by the ingest.

Files are parsed in the ingest's background thread (retrievers.reading), where a slow
parser (OCR: seconds a page) would otherwise leave the progress bar still for minutes.
A parser calls `report_activity(text)` as it goes, and `record_ocr_page(seconds)` per page
it read with OCR. The reader opens a `Channel` for its parsing thread (`watching`): the
latest text, tagged with the file it belongs to, is taken by the main thread, which sends
it as a progress event. Each parse keeps its own `Tally` (`tallying`) of OCR'd pages and
seconds, which the report adds up. Outside a watch or a tally both calls do nothing, so a
parser called directly (tests, tools) needs no setup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Channel", "Tally", "record_ocr_page", "report_activity", "tallying", "watching"]


class Channel:
    """The latest activity of one parsing thread, handed to another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._source = ""
        self._text = ""
        self._fresh = False

    def begin(self, source: str) -> None:
        """A new file starts being parsed: what was said about the previous one is dropped."""
        with self._lock:
            self._source, self._text, self._fresh = source, "", False

    def say(self, text: str) -> None:
        with self._lock:
            self._text, self._fresh = text, True

    def take(self, source: str) -> str | None:
        """The activity said about `source` since the last take, or None."""
        with self._lock:
            if not self._fresh or self._source != source:
                return None
            self._fresh = False
            return self._text


@dataclass
class Tally:
    """OCR done while parsing one file."""

    ocr_pages: int = 0
    ocr_seconds: float = 0.0


_local = threading.local()


@contextmanager
def watching(channel: Channel) -> Iterator[Channel]:
    """Activity reported in this thread goes to `channel` until the block ends."""
    before = getattr(_local, "channel", None)
    _local.channel = channel
    try:
        yield channel
    finally:
        _local.channel = before


@contextmanager
def tallying() -> Iterator[Tally]:
    """OCR pages recorded in this thread are counted in the tally yielded, until the block ends."""
    before = getattr(_local, "tally", None)
    _local.tally = tally = Tally()
    try:
        yield tally
    finally:
        _local.tally = before


def report_activity(text: str) -> None:
    """Say what this thread's parser is doing; shown as ingest progress when someone watches."""
    channel: Channel | None = getattr(_local, "channel", None)
    if channel is not None:
        channel.say(text)


def record_ocr_page(seconds: float) -> None:
    """Count one page read with OCR, and the seconds it took."""
    tally: Tally | None = getattr(_local, "tally", None)
    if tally is not None:
        tally.ocr_pages += 1
        tally.ocr_seconds += seconds
