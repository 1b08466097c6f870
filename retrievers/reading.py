"""One file to chunks, guarded: read it again, check it is the content hashed, parse,
clean, bound and split it; any failure there is that file's reported failure.

A decode error, JSON nested past the recursion limit, text over the size limits, a
parser or a user's loader raising on one odd file: each becomes a FileIssue naming the
file and the reason, and the run goes on. Files are parsed a few ahead in a background
thread (`parse_ahead`) while the ingest embeds and writes; what a slow parser is doing
meanwhile (OCR, page by page) is handed to the ingest as it goes (retrievers.activity).
Settings: DocumentSettings.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from assistant.errors import AssistantError, InputFileError
from assistant.settings import DocumentSettings
from retrievers.activity import Channel, tallying, watching
from retrievers.ledger import DocumentRow
from retrievers.limits import check_size, clean_sections
from retrievers.loaders import parse
from retrievers.report import FileIssue
from retrievers.splitter import TokenSplitter
from retrievers.store import scalar_meta

__all__ = ["Candidate", "FileReader", "LoaderFactory", "Parsed", "file_hash"]

log = logging.getLogger(__name__)

LoaderFactory = Callable[[Path], BaseLoader]


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Candidate:
    """A new or changed file to index (`existing`: the version the catalog holds)."""

    path: Path
    source: str
    kind: str
    file_hash: str
    size: int
    existing: DocumentRow | None


@dataclass(frozen=True)
class Parsed:
    chunks: list[Document]
    notes: list[str]  # parts of the file left out (invalid JSON Lines lines, records without text)
    ocr_pages: int = 0  # pages read with OCR
    ocr_seconds: float = 0.0  # the time they took


class FileReader:
    """Parses and splits candidates; `read` reads a file's bytes within the size limit."""

    def __init__(
        self,
        read: Callable[[Path], bytes],
        splitter: TokenSplitter,
        settings: DocumentSettings,
        loaders: Mapping[str, LoaderFactory],
    ) -> None:
        self.read = read
        self.splitter = splitter
        self.settings = settings
        self.loaders = loaders

    def parse(self, candidate: Candidate) -> Parsed | FileIssue:
        with tallying() as tally:
            parsed = self._parse(candidate)
        if isinstance(parsed, Parsed) and tally.ocr_pages:
            return Parsed(parsed.chunks, parsed.notes, tally.ocr_pages, tally.ocr_seconds)
        return parsed

    def _parse(self, candidate: Candidate) -> Parsed | FileIssue:
        path, source = candidate.path, candidate.source
        notes: list[str] = []
        try:
            if candidate.kind == "custom":
                sections = self._parse_custom(candidate)
            else:
                data = self.read(path)
                if file_hash(data) != candidate.file_hash:
                    return FileIssue(source, "changed while being ingested; run ingest again once it is saved")
                sections = parse(candidate.kind, path, data, self.settings, notes)
            sections = clean_sections(sections)
            check_size(source, sections, self.settings)
            chunks = self.splitter.split(sections, source)
        except InputFileError as exc:
            return FileIssue(source, exc.reason)
        except OSError as exc:
            return FileIssue(source, f"cannot be read ({exc.strerror or exc})")
        except AssistantError:
            raise
        except RecursionError:
            return FileIssue(source, "is nested too deeply to read (past Python's recursion limit); flatten it")
        except MemoryError:
            return FileIssue(source, "needs more memory than there is to read; split it into smaller files")
        except Exception as exc:  # a parser or user loader failing on one odd file must not stop the run
            log.warning("%s: %s", source, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return FileIssue(source, f"could not be parsed ({type(exc).__name__}: {exc})")
        if not chunks:
            return FileIssue(source, "holds no text")
        return Parsed(chunks, notes)

    def _parse_custom(self, candidate: Candidate) -> list[Document]:
        path = candidate.path
        loaded = self.loaders[path.suffix.lower()](path).load()
        if file_hash(self.read(path)) != candidate.file_hash:
            raise InputFileError(candidate.source, "changed while being ingested; run ingest again once it is saved")
        sections = []
        for doc in loaded:
            meta = dict(doc.metadata)
            page = meta.get("page")
            location = str(meta.get("location") or (f"page {int(page) + 1}" if isinstance(page, int) else ""))
            sections.append(
                Document(page_content=doc.page_content, metadata={**scalar_meta(meta), "location": location})
            )
        return sections

    def parse_ahead(
        self,
        candidates: list[Candidate],
        waiting: Callable[[], None],
        every_s: float,
        starting: Callable[[Candidate], None] | None = None,
        active: Callable[[Candidate, str], None] | None = None,
        poll_s: float = 0.5,
    ) -> Iterator[tuple[Candidate, Parsed | FileIssue]]:
        """Parse results in order, produced a few files ahead by a background thread;
        `starting` is called (in the caller's thread) before the wait for each file's
        result, `waiting` every `every_s` seconds while it is not ready, and `active`
        with what its parser says it is doing (retrievers.activity), looked at every
        `poll_s` seconds of the wait."""
        results: queue.Queue[Any] = queue.Queue(maxsize=4)  # a few files: each may hold millions of characters
        stop = threading.Event()
        channel = Channel()

        def work() -> None:
            try:
                with watching(channel):
                    for candidate in candidates:
                        if stop.is_set():
                            return
                        channel.begin(candidate.source)
                        results.put((candidate, self.parse(candidate)))
            except BaseException as exc:  # handed to the main thread, which raises it
                results.put(exc)

        thread = threading.Thread(target=work, name="ingest-parse", daemon=True)
        thread.start()
        try:
            for candidate in candidates:  # the thread puts one result per candidate, in order
                if starting:
                    starting(candidate)
                waited_since = time.monotonic()
                while True:
                    try:
                        item = results.get(timeout=min(every_s, poll_s) if active else every_s)
                        break
                    except queue.Empty:
                        if active and (said := channel.take(candidate.source)) is not None:
                            active(candidate, said)
                        if not active or time.monotonic() - waited_since >= every_s:
                            waiting()
                            waited_since = time.monotonic()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():
                try:
                    results.get_nowait()
                except queue.Empty:
                    thread.join(0.05)
