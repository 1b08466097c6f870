"""Ingest a file or folder into a collection: load, split, embed, write.

Idempotent: a file whose bytes have not changed is skipped without parsing; a changed
file keeps the chunks whose text is unchanged (not embedded again), gets its new
chunks, and loses only its stale ones, written new-first so that a crash never
leaves the file without chunks. One bad file is reported and the run goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.errors import InputFileError
from retrievers.loaders import SUPPORTED_SUFFIXES, load_file
from retrievers.splitter import TokenSplitter, content_hash
from retrievers.store import ChunkStore

__all__ = ["FileIssue", "IngestProgress", "IngestReport", "Ingestor"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileIssue:
    path: str
    reason: str


@dataclass
class IngestReport:
    collection: str
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_skipped: list[FileIssue] = field(default_factory=list)  # not a supported type
    files_failed: list[FileIssue] = field(default_factory=list)  # supported, but unreadable
    chunks_added: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    @property
    def files_added(self) -> int:
        return self.files_new + self.files_changed

    def summary(self) -> str:
        return (
            f"{self.collection}: {self.files_new} new, {self.files_changed} changed, "
            f"{self.files_unchanged} unchanged, {len(self.files_skipped)} skipped, "
            f"{len(self.files_failed)} failed files; {self.chunks_added} chunks added, "
            f"{self.chunks_deleted} deleted, {self.chunks_total} in the collection ({self.seconds:.1f}s)"
        )


@dataclass(frozen=True)
class IngestProgress:
    files_done: int
    files_total: int
    chunks_added: int
    path: str


@dataclass
class _Prepared:
    path: str
    source: str
    file_hash: str
    chunks: list[Document]
    ids: list[str]
    is_new: bool


def iter_files(root: Path) -> Iterator[Path]:
    """Files under root in a stable order; hidden files and folders are left out."""
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def _chunk_ids(path: str, chunks: list[Document]) -> list[str]:
    seen: Counter[str] = Counter()
    ids = []
    for chunk in chunks:
        text = chunk.page_content
        seen[text] += 1
        key = f"{path}\0{text}\0{seen[text]}"
        ids.append(hashlib.sha256(key.encode("utf-8")).hexdigest()[:40])
    return ids


class Ingestor:
    def __init__(
        self, store: ChunkStore, embeddings: Embeddings, splitter: TokenSplitter, *, batch_chunks: int = 256
    ) -> None:
        self.store = store
        self.embeddings = embeddings
        self.splitter = splitter
        self.batch_chunks = batch_chunks

    def ingest(
        self,
        root: Path,
        collection_name: str,
        *,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        if not root.exists():
            raise InputFileError(str(root), "does not exist; pass an existing file or folder")
        started = time.perf_counter()
        report = IngestReport(collection=collection_name)
        if collection_name in self.store.names():
            collection = self.store.open(collection_name)
        else:
            collection = self.store.create(collection_name, len(self.embeddings.embed_query("dimension probe")))
        known: dict[str, dict[str, str]] = defaultdict(dict)  # path -> chunk id -> file hash
        for stored in self.store.stored_chunks(collection):
            known[stored.path][stored.chunk_id] = stored.file_hash

        files = list(iter_files(root))
        base = root if root.is_dir() else root.parent
        pending: list[_Prepared] = []
        for done, file in enumerate(files, start=1):
            prepared = self._prepare(file, base, known, report)
            if prepared is not None:
                pending.append(prepared)
            if sum(len(p.chunks) for p in pending) >= self.batch_chunks or done == len(files):
                self._write(collection, pending, known, report)
                pending = []
            if on_progress:
                on_progress(IngestProgress(done, len(files), report.chunks_added, str(file)))
        report.chunks_total = self.store.count(collection)
        report.seconds = time.perf_counter() - started
        log.info("ingest %s", report.summary())
        return report

    def _prepare(
        self, file: Path, base: Path, known: dict[str, dict[str, str]], report: IngestReport
    ) -> _Prepared | None:
        path = str(file.resolve())
        source = file.relative_to(base).as_posix() if file != base else file.name
        if file.suffix.lower() not in SUPPORTED_SUFFIXES:
            report.files_skipped.append(FileIssue(source, f"unsupported type {file.suffix or '(none)'!r}"))
            return None
        try:
            file_hash = content_hash_bytes(file.read_bytes())
            stored = known.get(path, {})
            if stored and all(h == file_hash for h in stored.values()):
                report.files_unchanged += 1
                return None
            sections = load_file(file)
            chunks = self.splitter.split(sections, source)
        except InputFileError as exc:
            report.files_failed.append(FileIssue(source, exc.reason))
            log.warning("skipping %s: %s", source, exc.reason)
            return None
        except OSError as exc:
            report.files_failed.append(FileIssue(source, f"cannot be read ({exc.strerror or exc})"))
            return None
        if not chunks:
            report.files_failed.append(FileIssue(source, "holds no text"))
            return None
        return _Prepared(path, source, file_hash, chunks, _chunk_ids(path, chunks), is_new=not stored)

    def _write(
        self, collection: Any, pending: list[_Prepared], known: dict[str, dict[str, str]], report: IngestReport
    ) -> None:
        fresh = [
            (item, chunk_id, chunk)
            for item in pending
            for chunk_id, chunk in zip(item.ids, item.chunks, strict=True)
            if chunk_id not in known.get(item.path, {})
        ]
        vectors = self.embeddings.embed_documents([f"{c.metadata['title']}\n{c.page_content}" for _, _, c in fresh])
        by_file: dict[str, list[int]] = defaultdict(list)
        for position, (item, _, _) in enumerate(fresh):
            by_file[item.path].append(position)
        for item in pending:
            metadatas = [_metadata(item, index, chunk) for index, chunk in enumerate(item.chunks)]
            new_positions = by_file.get(item.path, [])
            new_ids = {fresh[p][1] for p in new_positions}
            # New chunks first, stale ones last: a crash in between leaves extra chunks, never none.
            self.store.upsert(
                collection,
                [fresh[p][1] for p in new_positions],
                [fresh[p][2].page_content for p in new_positions],
                [m for i, m in zip(item.ids, metadatas, strict=True) if i in new_ids],
                [vectors[p] for p in new_positions],
            )
            kept = [(i, m) for i, m in zip(item.ids, metadatas, strict=True) if i not in new_ids]
            self.store.update_metadata(collection, [i for i, _ in kept], [m for _, m in kept])
            current = set(item.ids)
            stale = [i for i in known.get(item.path, {}) if i not in current]
            self.store.remove(collection, stale)
            known[item.path] = dict.fromkeys(item.ids, item.file_hash)
            report.chunks_added += len(new_positions)
            report.chunks_deleted += len(stale)
            if item.is_new:
                report.files_new += 1
            else:
                report.files_changed += 1


def content_hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _metadata(item: _Prepared, index: int, chunk: Document) -> dict[str, Any]:
    meta = {
        **chunk.metadata,
        "path": item.path,
        "source": item.source,
        "file_hash": item.file_hash,
        "chunk_hash": content_hash(chunk.page_content),
        "chunk_index": index,
    }
    # Chroma accepts only str, int, float and bool values.
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}
