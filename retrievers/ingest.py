"""Sync a file or folder into a collection: only what changed is parsed, embedded and written.

A run (1) scans and hashes the files, (2) compares them with the catalog (new,
changed, unchanged, moved, removed), and, when there is anything to do, (3) takes
the collection's write lock, cleans up after any killed earlier run, moves and
removes documents, and (4) parses the new and changed files in a background thread
while the main thread embeds and writes them in batches, following the catalog's
crash-safe protocol (see retrievers.catalog). A file that cannot be indexed is
reported and keeps whatever it had in the index; the run goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.errors import AssistantError, InputFileError
from retrievers.catalog import Catalog, ChunkRow, CollectionRow, DocumentRow, StagedDocument
from retrievers.detect import BINARY, KINDS, detect_kind
from retrievers.keywords import KeywordScheme
from retrievers.lease import CollectionLease
from retrievers.loaders import ParseOptions, parse
from retrievers.report import FileIssue, IngestProgress, IngestReport
from retrievers.scan import Scan, scan
from retrievers.splitter import TokenSplitter, chunk_title, content_hash, embedding_text
from retrievers.store import ChunkStore

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["IngestOptions", "Ingestor", "LoaderFactory"]

log = logging.getLogger(__name__)

LoaderFactory = Callable[[Path], BaseLoader]
_DONE = object()


@dataclass(frozen=True)
class IngestOptions:
    batch_chunks: int = 256  # chunks embedded and written together
    max_file_bytes: int = 50 * 1024 * 1024
    parse: ParseOptions = field(default_factory=ParseOptions)
    lock_ttl_s: float = 600.0  # a crashed writer's lock expires after this (at once on the same host)
    keyword_language: str = "english"  # Snowball stemming of new keyword indexes; "none": no stemming


@dataclass(frozen=True)
class _Candidate:
    path: Path
    source: str
    kind: str
    file_hash: str
    size: int
    existing: DocumentRow | None


@dataclass
class _Plan:
    unchanged: int = 0
    candidates: list[_Candidate] = field(default_factory=list)
    moves: list[tuple[DocumentRow, _Candidate]] = field(default_factory=list)
    removed: list[DocumentRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.candidates or self.moves or self.removed)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunk_id(doc_key: str, chunk_hash: str, occurrence: int) -> str:
    return _sha256(f"{doc_key}\0{chunk_hash}\0{occurrence}".encode())[:40]


def _scalar_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    # Chroma accepts only str, int, float and bool values.
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}


class Ingestor:
    """Keeps one collection in step with a folder. Parts are passed in; nothing is global."""

    def __init__(
        self,
        catalog: Catalog,
        store: ChunkStore,
        embeddings: Embeddings,
        splitter: TokenSplitter,
        options: IngestOptions | None = None,
        *,
        loaders: Mapping[str, LoaderFactory] | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.embeddings = embeddings
        self.splitter = splitter
        self.options = options or IngestOptions()
        self.loaders = {
            suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}": factory
            for suffix, factory in (loaders or {}).items()
        }
        self._hashes: dict[str, tuple[int, int, str, str]] = {}  # path -> size, mtime_ns, hash, kind

    # Planning -----------------------------------------------------------------------

    def _read(self, path: Path) -> bytes:
        return path.read_bytes()

    def _look(self, path: Path, found: Scan, report: IngestReport) -> tuple[str, str, int] | None:
        """(kind, hash, size) of a file, or None after reporting why it is left out."""
        source = found.source(path)
        try:
            stat = path.stat()
            key = str(path)
            cached = self._hashes.get(key)
            if cached and cached[:2] == (stat.st_size, stat.st_mtime_ns):
                return cached[3], cached[2], stat.st_size
            if stat.st_size > self.options.max_file_bytes:
                limit = self.options.max_file_bytes / 1e6
                report.files_failed.append(
                    FileIssue(
                        source,
                        f"is {stat.st_size / 1e6:.0f} MB, over the {limit:.0f} MB limit; split it, "
                        f"or raise ASSISTANT_MAX_FILE_MB",
                    )
                )
                return None
            data = self._read(path)
        except OSError as exc:
            reason = "permission denied; check its permissions" if isinstance(exc, PermissionError) else None
            report.files_failed.append(FileIssue(source, f"cannot be read ({reason or exc.strerror or exc})"))
            return None
        suffix = path.suffix.lower()
        kind = "custom" if suffix in self.loaders else detect_kind(path, data)
        if kind == BINARY:
            report.files_skipped.append(
                FileIssue(source, f"binary file of a type not indexed ({suffix or 'no extension'})")
            )
            return None
        if kind != "custom" and kind not in KINDS:
            report.files_skipped.append(FileIssue(source, f"unsupported type {suffix!r}"))
            return None
        file_hash = _sha256(data)
        self._hashes[str(path)] = (stat.st_size, stat.st_mtime_ns, file_hash, kind)
        return kind, file_hash, len(data)

    def _plan(self, col: CollectionRow, found: Scan, report: IngestReport) -> _Plan:
        plan = _Plan()
        known = self.catalog.documents(col.id)
        seen = {str(p) for p in found.files}
        looked: list[tuple[Path, str, str, int]] = []
        for path in found.files:
            result = self._look(path, found, report)
            if result is not None:
                looked.append((path, *result))
        plan.removed = [row for path, row in known.items() if found.covers(path) and path not in seen]
        # A file whose content matches a vanished document is that document, moved or renamed.
        vanished: dict[str, list[DocumentRow]] = defaultdict(list)
        for row in plan.removed:
            vanished[row.file_hash].append(row)
        wanted = {h for _, _, h, _ in looked}
        for stored, row in known.items():
            if row.file_hash in wanted and not found.covers(stored) and not os.path.exists(stored):
                vanished[row.file_hash].append(row)
        for path, kind, file_hash, size in looked:
            existing = known.get(str(path))
            if existing is not None and existing.file_hash == file_hash:
                plan.unchanged += 1
                continue
            candidate = _Candidate(path, found.source(path), kind, file_hash, size, existing)
            if existing is None and vanished.get(file_hash):
                moved = vanished[file_hash].pop()
                plan.moves.append((moved, candidate))
                if moved in plan.removed:
                    plan.removed.remove(moved)
                continue
            plan.candidates.append(candidate)
        return plan

    # The run ------------------------------------------------------------------------

    def ingest(
        self,
        root: Path,
        col: CollectionRow,
        *,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(collection=col.name)
        found = scan(root)
        report.files_skipped.extend(found.issues)
        plan = self._plan(col, found, report)
        keywords_built = col.keywords is not None and col.keywords.current
        if plan.empty and keywords_built and not self.catalog.has_unfinished(col.id):
            report.files_unchanged = plan.unchanged
            report.chunks_total = self.catalog.live_count(col.id)
            report.seconds = time.perf_counter() - started
            return report

        owner = CollectionLease.new_owner()
        self.catalog.lease.acquire(col, owner, self.options.lock_ttl_s)
        try:
            chroma = self.store.create(col.chroma_name, col.embedder.name, col.embedder.dimension)
            self._recover(col, chroma, report)
            if not keywords_built:  # a collection made before keyword search, or by an older scheme
                language = col.keywords.language if col.keywords else self.options.keyword_language
                self.catalog.rebuild_keywords(col.id, KeywordScheme(language=language))
            # Planned again under the lock: another process may have written in between.
            failed, skipped = list(report.files_failed), list(report.files_skipped)
            plan = self._plan(col, found, report)
            report.files_failed, report.files_skipped = failed, skipped
            report.files_unchanged = plan.unchanged
            for row, candidate in plan.moves:
                self._move(col, chroma, row, candidate)
                report.files_moved += 1
            for row in plan.removed:
                ids = [c.id for c in self.catalog.live_chunks(col.id, [row.id]).get(row.id, [])]
                self.store.remove(chroma, ids)  # Chroma first: a crash here only repeats the removal
                self.catalog.remove_document(col.id, row.id)
                report.files_removed += 1
                report.chunks_deleted += len(ids)
            self._write_all(col, chroma, plan.candidates, owner, report, started, on_progress)
        finally:
            self.catalog.lease.release(col.id, owner)
        report.chunks_total = self.catalog.live_count(col.id)
        report.seconds = time.perf_counter() - started
        log.info("ingest %s", report.summary())
        return report

    def _recover(self, col: CollectionRow, chroma: Collection, report: IngestReport) -> None:
        stray = self.catalog.unfinished(col.id)
        if stray:
            log.warning("%s: cleaning up %d chunks left by an interrupted run", col.name, len(stray))
            self.store.remove(chroma, stray)
        self.catalog.forget_unfinished(col.id)
        report.recovered = len(stray)

    def _move(self, col: CollectionRow, chroma: Collection, row: DocumentRow, to: _Candidate) -> None:
        live = self.catalog.live_chunks(col.id, [row.id]).get(row.id, [])
        metas = {}
        for chunk in live:
            meta = dict(chunk.meta)
            meta["source"] = to.source
            meta["title"] = chunk_title(to.source, str(meta.get("heading", "")))
            metas[chunk.id] = meta
        self.store.update_metadata(chroma, list(metas), [_scalar_meta(m) for m in metas.values()])
        self.catalog.move(row.id, str(to.path), to.source, metas)

    # Parse in a thread, embed and write in this one -----------------------------------

    def _parse(self, candidate: _Candidate) -> list[Document] | FileIssue:
        path, source = candidate.path, candidate.source
        try:
            if candidate.kind == "custom":
                sections = self._parse_custom(candidate)
            else:
                data = self._read(path)
                if _sha256(data) != candidate.file_hash:
                    return FileIssue(source, "changed while being ingested; run ingest again once it is saved")
                sections = parse(candidate.kind, path, data, self.options.parse)
            chunks = self.splitter.split(sections, source)
        except InputFileError as exc:
            return FileIssue(source, exc.reason)
        except OSError as exc:
            return FileIssue(source, f"cannot be read ({exc.strerror or exc})")
        except AssistantError:
            raise
        except Exception as exc:  # a parser or user loader failing on one odd file must not stop the run
            log.warning("%s: %s", source, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            return FileIssue(source, f"could not be parsed ({type(exc).__name__}: {exc})")
        if not chunks:
            return FileIssue(source, "holds no text")
        return chunks

    def _parse_custom(self, candidate: _Candidate) -> list[Document]:
        path = candidate.path
        loaded = self.loaders[path.suffix.lower()](path).load()
        if _sha256(self._read(path)) != candidate.file_hash:
            raise InputFileError(candidate.source, "changed while being ingested; run ingest again once it is saved")
        sections = []
        for doc in loaded:
            meta = dict(doc.metadata)
            page = meta.get("page")
            location = str(meta.get("location") or (f"page {int(page) + 1}" if isinstance(page, int) else ""))
            sections.append(
                Document(page_content=doc.page_content, metadata={**_scalar_meta(meta), "location": location})
            )
        return sections

    def _parsed(self, candidates: list[_Candidate]) -> Iterator[tuple[_Candidate, list[Document] | FileIssue]]:
        """Parse results in order, produced a few files ahead by a background thread."""
        results: queue.Queue[Any] = queue.Queue(maxsize=16)
        stop = threading.Event()

        def work() -> None:
            try:
                for candidate in candidates:
                    if stop.is_set():
                        return
                    results.put((candidate, self._parse(candidate)))
                results.put(_DONE)
            except BaseException as exc:  # handed to the main thread, which raises it
                results.put(exc)

        thread = threading.Thread(target=work, name="ingest-parse", daemon=True)
        thread.start()
        try:
            while (item := results.get()) is not _DONE:
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

    def _stage(
        self, col: CollectionRow, candidate: _Candidate, sections: list[Document], keys: set[str]
    ) -> StagedDocument:
        existing = candidate.existing
        if existing is not None:
            doc_key = existing.doc_key
        else:
            salt = 0
            doc_key = _sha256(f"{col.name}\0{candidate.path}".encode())[:24]
            while doc_key in keys:
                salt += 1
                doc_key = _sha256(f"{col.name}\0{candidate.path}\0{salt}".encode())[:24]
            keys.add(doc_key)
        seen: Counter[str] = Counter()
        rows = []
        for seq, chunk in enumerate(sections):
            heading = str(chunk.metadata.get("heading", ""))
            chunk_hash = content_hash(f"{heading}\n{chunk.page_content}")
            seen[chunk_hash] += 1
            chunk_id = _chunk_id(doc_key, chunk_hash, seen[chunk_hash])
            meta = _scalar_meta({**chunk.metadata, "source": candidate.source, "chunk_index": seq, "doc_key": doc_key})
            rows.append(ChunkRow(chunk_id, seq, chunk_hash, chunk.page_content, meta))
        live: dict[str, ChunkRow] = {}
        if existing is not None:
            live = {c.id: c for c in self.catalog.live_chunks(col.id, [existing.id]).get(existing.id, [])}
        ids = {r.id for r in rows}
        return StagedDocument(
            path=str(candidate.path),
            source=candidate.source,
            kind=candidate.kind,
            file_hash=candidate.file_hash,
            size=candidate.size,
            doc_key=doc_key,
            chunks=rows,
            document_id=existing.id if existing else None,
            fresh_ids=frozenset(ids - set(live)),
            restamped=frozenset(
                r.id for r in rows if r.id in live and (live[r.id].meta, live[r.id].seq) != (r.meta, r.seq)
            ),
            stale_ids=tuple(i for i in live if i not in ids),
        )

    def _write_all(
        self,
        col: CollectionRow,
        chroma: Collection,
        candidates: list[_Candidate],
        owner: str,
        report: IngestReport,
        started: float,
        on_progress: Callable[[IngestProgress], None] | None,
    ) -> None:
        keys = self.catalog.doc_keys(col.id)
        batch: list[StagedDocument] = []
        done = 0

        def progress(path: str) -> None:
            if on_progress:
                elapsed = max(time.perf_counter() - started, 1e-6)
                on_progress(
                    IngestProgress(done, len(candidates), report.chunks_added, report.chunks_added / elapsed, path)
                )

        # A file counts as done once its chunks are written (or it failed), not when parsed.
        for candidate, parsed in self._parsed(candidates):
            if isinstance(parsed, FileIssue):
                done += 1
                report.files_failed.append(parsed)
                log.warning("not indexed: %s: %s", parsed.path, parsed.reason)
            else:
                batch.append(self._stage(col, candidate, parsed, keys))
                if sum(len(d.fresh_ids) for d in batch) >= self.options.batch_chunks:
                    self._flush(col, chroma, batch, report)
                    self.catalog.lease.renew(col.id, owner, self.options.lock_ttl_s)
                    done += len(batch)
                    batch = []
            progress(str(candidate.source))
        if batch:
            self._flush(col, chroma, batch, report)
            done += len(batch)
            progress(batch[-1].source)

    def _flush(self, col: CollectionRow, chroma: Collection, batch: list[StagedDocument], report: IngestReport) -> None:
        new = sum(1 for doc in batch if doc.document_id is None)
        fresh = [c for doc in batch for c in doc.chunks if c.id in doc.fresh_ids]
        # Embedded before anything is written: an embedder failure leaves the index as it was.
        vectors = self.embeddings.embed_documents([embedding_text(c.meta, c.text) for c in fresh])
        self.catalog.stage(col.id, batch)
        self.store.upsert(chroma, [c.id for c in fresh], [c.text for c in fresh], [c.meta for c in fresh], vectors)
        kept = [c for doc in batch for c in doc.chunks if c.id in doc.restamped]
        self.store.update_metadata(chroma, [c.id for c in kept], [c.meta for c in kept])
        self.catalog.commit(col.id, batch)
        stale = [i for doc in batch for i in doc.stale_ids]
        self.store.remove(chroma, stale)
        self.catalog.purge(col.id, stale)
        report.chunks_added += len(fresh)
        report.chunks_deleted += len(stale)
        report.files_new += new
        report.files_changed += len(batch) - new
