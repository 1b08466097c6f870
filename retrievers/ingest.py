"""Sync a file or folder into a collection: only what changed is parsed, embedded and written.

A run (1) scans and hashes the files, (2) compares them with the catalog (new,
changed, unchanged, moved, removed), and, when there is anything to do, (3) takes
the collection's write lock, cleans up after any killed earlier run, moves and
removes documents, and (4) parses the new and changed files in a background thread
while the main thread embeds and writes them in batches, following the catalog's
crash-safe protocol (see retrievers.catalog). A file that cannot be indexed is
reported and keeps whatever it had in the index; the run goes on.

Each file's reading, detection, parsing, splitting and embedding is guarded: any
failure there (a decode error, JSON nested past the recursion limit, text over the
size limits) is that file's reported failure. Work per file is bounded: text over
`max_file_chars` or with a line over `max_line_chars` is refused, splitting is linear,
and chunks are embedded and written `batch_chunks` at a time, the lease renewed after
each batch, so a large file makes progress, reports it, and resumes after a kill.
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
from retrievers.limits import check_size, clean_sections
from retrievers.loaders import ParseOptions, parse
from retrievers.report import FileIssue, IngestProgress, IngestReport
from retrievers.scan import Scan, read_file, scan, stored_path
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
    batch_chunks: int = 256  # chunks embedded and written together (a larger file takes several)
    max_file_bytes: int = 50 * 1024 * 1024  # read at most; max_file_chars and max_line_chars are in `parse`
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


@dataclass(frozen=True)
class _Parsed:
    chunks: list[Document]
    notes: list[str]  # parts of the file left out (invalid JSON Lines lines, records without text)


@dataclass(eq=False)  # compared by identity: two documents are never the same
class _Open:
    """A document staged in this run, written a slice at a time, committed once all is written."""

    candidate: _Candidate
    doc: StagedDocument
    notes: list[str]
    waiting: int  # its chunks not yet embedded and written


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
        return read_file(path, self.options.max_file_bytes)

    def _too_big(self, source: str, size: int) -> FileIssue:
        limit = self.options.max_file_bytes / 1e6
        return FileIssue(
            source, f"is {size / 1e6:.0f} MB, over the {limit:.0f} MB limit; split it, or raise ASSISTANT_MAX_FILE_MB"
        )

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
                report.files_failed.append(self._too_big(source, stat.st_size))
                return None
            data = self._read(path)
            if len(data) > self.options.max_file_bytes:  # it grew since
                report.files_failed.append(self._too_big(source, len(data)))
                return None
        except OSError as exc:
            reason = "permission denied; check its permissions" if isinstance(exc, PermissionError) else None
            report.files_failed.append(FileIssue(source, f"cannot be read ({reason or exc.strerror or exc})"))
            return None
        except MemoryError:
            report.files_failed.append(FileIssue(source, "needs more memory than there is to read; split it"))
            return None
        suffix = path.suffix.lower()
        try:
            kind = "custom" if suffix in self.loaders else detect_kind(path, data)
        except Exception as exc:  # detection reads content (JSON sniffing): one odd file must not stop the run
            report.files_failed.append(FileIssue(source, f"could not be read ({type(exc).__name__}: {exc})"))
            return None
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
        resuming = set(self.catalog.incomplete_documents(col.id))  # never the target of a move
        seen = {stored_path(p) for p in found.files}
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
            existing = known.get(stored_path(path))
            if existing is not None and existing.file_hash == file_hash:
                plan.unchanged += 1
                continue
            candidate = _Candidate(path, found.source(path), kind, file_hash, size, existing)
            if existing is None and vanished.get(file_hash) and stored_path(path) not in resuming:
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
            self._recover(col, chroma, found, report)
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
            if self.catalog.has_unfinished(col.id):  # kept for resuming, but not claimed by this run
                self.store.remove(chroma, self.catalog.unfinished(col.id))
                self.catalog.forget_unfinished(col.id)
        finally:
            self.catalog.lease.release(col.id, owner)
        report.chunks_total = self.catalog.live_count(col.id)
        report.seconds = time.perf_counter() - started
        log.info("ingest %s", report.summary())
        return report

    def _recover(self, col: CollectionRow, chroma: Collection, found: Scan, report: IngestReport) -> None:
        """Clean up after a killed run; keep its pending chunks that reached Chroma, of documents
        this run may ingest again, so that they are not embedded twice (see retrievers.catalog)."""
        stray = self.catalog.unfinished(col.id)
        covered = [i for i, path in self.catalog.pending_paths(col.id) if found.covers(path)]
        keep = set(self.store.texts(chroma, covered)) if covered else set()
        drop = [i for i in stray if i not in keep]
        if stray:
            log.warning(
                "%s: %d chunks left by an interrupted run: %d kept to resume, %d cleaned up",
                col.name,
                len(stray),
                len(keep),
                len(drop),
            )
        self.store.remove(chroma, drop)
        self.catalog.forget_chunks(col.id, drop)
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
        self.catalog.move(row.id, stored_path(to.path), to.source, metas)

    # Parse in a thread, embed and write in this one -----------------------------------

    def _parse(self, candidate: _Candidate) -> _Parsed | FileIssue:
        path, source = candidate.path, candidate.source
        notes: list[str] = []
        try:
            if candidate.kind == "custom":
                sections = self._parse_custom(candidate)
            else:
                data = self._read(path)
                if _sha256(data) != candidate.file_hash:
                    return FileIssue(source, "changed while being ingested; run ingest again once it is saved")
                sections = parse(candidate.kind, path, data, self.options.parse, notes)
            sections = clean_sections(sections)
            check_size(source, sections, self.options.parse)
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
        return _Parsed(chunks, notes)

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

    def _parsed(
        self, candidates: list[_Candidate], waiting: Callable[[], None]
    ) -> Iterator[tuple[_Candidate, _Parsed | FileIssue]]:
        """Parse results in order, produced a few files ahead by a background thread;
        `waiting` is called every so often while the next one is not ready."""
        results: queue.Queue[Any] = queue.Queue(maxsize=4)  # a few files: each may hold millions of characters
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
            while True:
                try:
                    item = results.get(timeout=min(30.0, self.options.lock_ttl_s / 4))
                except queue.Empty:
                    waiting()
                    continue
                if item is _DONE:
                    return
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
        self,
        col: CollectionRow,
        candidate: _Candidate,
        sections: list[Document],
        keys: set[str],
        leftovers: Mapping[str, DocumentRow],
    ) -> StagedDocument:
        existing = candidate.existing
        path = stored_path(candidate.path)
        # A new document whose first writing was interrupted takes up its row again, to resume.
        known = existing or leftovers.get(path)
        if known is not None:
            doc_key = known.doc_key
        else:
            salt = 0
            doc_key = _sha256(f"{col.name}\0{path}".encode())[:24]
            while doc_key in keys:
                salt += 1
                doc_key = _sha256(f"{col.name}\0{path}\0{salt}".encode())[:24]
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
        pending: dict[str, ChunkRow] = {}
        if known is not None:
            live = {c.id: c for c in self.catalog.live_chunks(col.id, [known.id]).get(known.id, [])}
            pending = {c.id: c for c in self.catalog.pending_chunks(col.id, [known.id]).get(known.id, [])}
        written = {**live, **pending}
        ids = {r.id for r in rows}
        return StagedDocument(
            path=path,
            source=candidate.source,
            kind=candidate.kind,
            file_hash=candidate.file_hash,
            size=candidate.size,
            doc_key=doc_key,
            chunks=rows,
            document_id=known.id if known else None,
            fresh_ids=frozenset(ids - set(live)),
            resumed=frozenset(ids & set(pending)),
            restamped=frozenset(
                r.id for r in rows if r.id in written and (written[r.id].meta, written[r.id].seq) != (r.meta, r.seq)
            ),
            stale_ids=tuple(i for i in written if i not in ids),
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
        """Embed and write the candidates' chunks `batch_chunks` at a time, whatever the files'
        sizes; a document is committed once all its chunks are written."""
        keys = self.catalog.doc_keys(col.id)
        leftovers = self.catalog.incomplete_documents(col.id)
        opened: list[_Open] = []  # staged, in order; only the last ones may still wait for chunks
        queued: list[tuple[_Open, ChunkRow]] = []  # chunks to embed, in order
        done = 0
        path = ""

        def renew() -> None:
            self.catalog.lease.renew(col.id, owner, self.options.lock_ttl_s)

        def progress() -> None:
            if on_progress:
                elapsed = max(time.perf_counter() - started, 1e-6)
                on_progress(
                    IngestProgress(done, len(candidates), report.chunks_added, report.chunks_added / elapsed, path)
                )

        def write(count: int) -> None:
            nonlocal queued, opened, done
            batch, queued = queued[:count], queued[count:]
            failed = self._write_slice(col, chroma, batch, report)
            if failed:
                queued = [(o, c) for o, c in queued if o not in failed]
                opened = [o for o in opened if o not in failed]
                done += len(failed)
            ready = [o for o in opened if o.waiting == 0]
            if ready:
                self._commit(col, chroma, ready, report)
                opened = [o for o in opened if o.waiting > 0]
                done += len(ready)
            renew()
            progress()

        for candidate, parsed in self._parsed(candidates, renew):
            path = str(candidate.source)
            if isinstance(parsed, FileIssue):
                done += 1
                report.files_failed.append(parsed)
                log.warning("not indexed: %s: %s", parsed.path, parsed.reason)
                progress()
                continue
            doc = self._stage(col, candidate, parsed.chunks, keys, leftovers)
            report.chunks_resumed += len(doc.resumed)
            todo = [c for c in doc.chunks if c.id in doc.fresh_ids and c.id not in doc.resumed]
            item = _Open(candidate, doc, parsed.notes, len(todo))
            opened.append(item)
            queued.extend((item, c) for c in todo)
            while len(queued) >= self.options.batch_chunks:
                write(self.options.batch_chunks)
            progress()
        if queued or opened:
            write(len(queued))

    def _write_slice(
        self, col: CollectionRow, chroma: Collection, batch: list[tuple[_Open, ChunkRow]], report: IngestReport
    ) -> set[_Open]:
        """Steps 1 and 2 of the protocol for one slice of chunks; returns the documents that
        could not be embedded, reported and left out of the run."""
        failed: set[_Open] = set()
        try:
            vectors = self._embed([c for _, c in batch])
        except AssistantError:
            raise
        except Exception as exc:  # find the file whose text the embedder refuses; the others go on
            owners = list(dict.fromkeys(o for o, _ in batch))
            if len(owners) == 1:
                failed.add(owners[0])
            else:
                for item in owners:
                    try:
                        self._embed([c for o, c in batch if o is item])
                    except Exception:  # reported with the batch's error below
                        failed.add(item)
                if len(failed) == len(owners):
                    raise  # not a file's problem: every file of the batch fails alike
            for item in failed:
                reason = f"could not be embedded ({type(exc).__name__}: {exc})"
                report.files_failed.append(FileIssue(item.candidate.source, reason))
                log.warning("not indexed: %s: %s", item.candidate.source, reason)
            batch = [(o, c) for o, c in batch if o not in failed]
            vectors = self._embed([c for _, c in batch])
        docs = [o.doc for o in dict.fromkeys(o for o, _ in batch)]
        self.catalog.stage(col.id, docs, {c.id for _, c in batch})
        self.store.upsert(
            chroma, [c.id for _, c in batch], [c.text for _, c in batch], [c.meta for _, c in batch], vectors
        )
        for item, _ in batch:
            item.waiting -= 1
        report.chunks_added += len(batch)
        return failed

    def _embed(self, chunks: list[ChunkRow]) -> list[list[float]]:
        return self.embeddings.embed_documents([embedding_text(c.meta, c.text) for c in chunks]) if chunks else []

    def _commit(self, col: CollectionRow, chroma: Collection, ready: list[_Open], report: IngestReport) -> None:
        """Steps 3 to 5 of the protocol for documents whose new chunks are all written."""
        docs = [o.doc for o in ready]
        kept = [c for doc in docs for c in doc.chunks if c.id in doc.restamped]
        self.store.update_metadata(chroma, [c.id for c in kept], [c.meta for c in kept])
        self.catalog.commit(col.id, docs)
        stale = [i for doc in docs for i in doc.stale_ids]
        self.store.remove(chroma, stale)
        self.catalog.purge(col.id, stale)
        report.chunks_deleted += len(stale)
        for item in ready:
            if item.candidate.existing is None:
                report.files_new += 1
            else:
                report.files_changed += 1
            if item.notes:
                report.files_partial.append(FileIssue(item.candidate.source, "; ".join(item.notes)))
