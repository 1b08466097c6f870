"""Sync a file or folder into a collection: only what changed is parsed, embedded and written.

A run (1) scans and hashes the files, (2) compares them with the ledger (new,
changed, unchanged, moved, removed), and, when there is anything to do, (3) takes
the collection's lease, cleans up after any killed earlier run, moves and removes
documents, and (4) hands the new and changed files to the writer (retrievers.writer),
which parses them in a background thread (retrievers.reading) while it embeds and
writes them in batches, following the ledger's crash-safe protocol. A file that
cannot be indexed is reported and keeps whatever it had in the index; the run goes on.
`on_progress` hears of each step, from the scan on (phases: retrievers.report).

Work per file is bounded: a file over `max_file_mb` is not read, text over
`max_file_chars` or with a line over `max_line_chars` is refused (DocumentSettings).
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from assistant.settings import DocumentSettings
from retrievers.catalog import CollectionRow
from retrievers.detect import BINARY, KINDS, detect_kind
from retrievers.keyword_index import KeywordIndex
from retrievers.keywords import KeywordScheme
from retrievers.lease import CollectionLease
from retrievers.ledger import DocumentRow, Ledger
from retrievers.reading import Candidate, FileReader, LoaderFactory, file_hash
from retrievers.report import SCANNING, FileIssue, IngestProgress, IngestReport
from retrievers.scan import Scan, read_file, scan, stored_path
from retrievers.splitter import TokenSplitter, chunk_title
from retrievers.store import ChunkStore, scalar_meta
from retrievers.writer import DocumentWriter, batch_chunks

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["Ingestor"]

log = logging.getLogger(__name__)


@dataclass
class _Plan:
    unchanged: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    moves: list[tuple[DocumentRow, Candidate]] = field(default_factory=list)
    removed: list[DocumentRow] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.candidates or self.moves or self.removed)


class Ingestor:
    """Keeps one collection in step with a folder. Parts are passed in; nothing is global."""

    def __init__(
        self,
        ledger: Ledger,
        keywords: KeywordIndex,
        lease: CollectionLease,
        store: ChunkStore,
        embeddings: Embeddings,
        splitter: TokenSplitter,
        settings: DocumentSettings,
        *,
        loaders: Mapping[str, LoaderFactory] | None = None,
    ) -> None:
        self.ledger = ledger
        self.keywords = keywords
        self.lease = lease
        self.store = store
        self.settings = settings
        self.max_file_bytes = int(settings.max_file_mb * 1024 * 1024)  # read at most
        self.loaders = {
            suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}": factory
            for suffix, factory in (loaders or {}).items()
        }
        reader = FileReader(self._read, splitter, settings, self.loaders)
        self.writer = DocumentWriter(
            ledger, store, embeddings, reader, batch_chunks(settings), settings.embedding_batch_size
        )
        self._hashes: dict[str, tuple[int, int, str, str]] = {}  # path -> size, mtime_ns, hash, kind

    # Planning -----------------------------------------------------------------------

    def _read(self, path: Path) -> bytes:
        return read_file(path, self.max_file_bytes)

    def _too_big(self, source: str, size: int) -> FileIssue:
        limit = self.max_file_bytes / 1e6
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
            if stat.st_size > self.max_file_bytes:
                report.files_failed.append(self._too_big(source, stat.st_size))
                return None
            data = self._read(path)
            if len(data) > self.max_file_bytes:  # it grew since
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
        digest = file_hash(data)
        self._hashes[str(path)] = (stat.st_size, stat.st_mtime_ns, digest, kind)
        return kind, digest, len(data)

    def _plan(self, col: CollectionRow, found: Scan, report: IngestReport) -> _Plan:
        plan = _Plan()
        known = self.ledger.documents(col.id)
        resuming = set(self.ledger.incomplete_documents(col.id))  # never the target of a move
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
        for path, kind, digest, size in looked:
            existing = known.get(stored_path(path))
            if existing is not None and existing.file_hash == digest:
                plan.unchanged += 1
                continue
            candidate = Candidate(path, found.source(path), kind, digest, size, existing)
            if existing is None and vanished.get(digest) and stored_path(path) not in resuming:
                moved = vanished[digest].pop()
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
        if on_progress:
            on_progress(IngestProgress(0, 0, 0, 0.0, str(root), SCANNING))
        found = scan(root)
        report.files_skipped.extend(found.issues)
        plan = self._plan(col, found, report)
        keywords_built = col.keywords is not None and col.keywords.current
        if plan.empty and keywords_built and not self.ledger.has_unfinished(col.id):
            report.files_unchanged = plan.unchanged
            report.chunks_total = self.ledger.live_count(col.id)
            report.seconds = time.perf_counter() - started
            return report

        with self.lease.held(col) as holding:
            chroma = self.store.create(col.chroma_name, col.embedder.name, col.embedder.dimension)
            self._recover(col, chroma, found, report)
            if not keywords_built:  # a collection made before keyword search, or by an older scheme
                language = col.keywords.language if col.keywords else self.settings.keyword_language
                self.keywords.rebuild(col.id, KeywordScheme(language=language), self.ledger.keyword_pages(col.id))
            # Planned again under the lock: another process may have written in between.
            failed, skipped = list(report.files_failed), list(report.files_skipped)
            plan = self._plan(col, found, report)
            report.files_failed, report.files_skipped = failed, skipped
            report.files_unchanged = plan.unchanged
            for row, candidate in plan.moves:
                self._move(col, chroma, row, candidate)
                report.files_moved += 1
            for row in plan.removed:
                ids = [c.id for c in self.ledger.live_chunks(col.id, [row.id]).get(row.id, [])]
                self.store.remove(chroma, ids)  # Chroma first: a crash here only repeats the removal
                self.ledger.remove_document(col.id, row.id)
                report.files_removed += 1
                report.chunks_deleted += len(ids)
            self.writer.write_all(col, chroma, plan.candidates, holding, report, started, on_progress)
            if self.ledger.has_unfinished(col.id):  # kept for resuming, but not claimed by this run
                self.store.remove(chroma, self.ledger.unfinished(col.id))
                self.ledger.forget_unfinished(col.id)
        report.chunks_total = self.ledger.live_count(col.id)
        report.seconds = time.perf_counter() - started
        log.info("ingest %s", report.summary())
        return report

    def _recover(self, col: CollectionRow, chroma: Collection, found: Scan, report: IngestReport) -> None:
        """Clean up after a killed run; keep its pending chunks that reached Chroma, of documents
        this run may ingest again, so that they are not embedded twice (see retrievers.ledger)."""
        stray = self.ledger.unfinished(col.id)
        covered = [i for i, path in self.ledger.pending_paths(col.id) if found.covers(path)]
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
        self.ledger.forget_chunks(col.id, drop)
        report.recovered = len(stray)

    def _move(self, col: CollectionRow, chroma: Collection, row: DocumentRow, to: Candidate) -> None:
        live = self.ledger.live_chunks(col.id, [row.id]).get(row.id, [])
        metas = {}
        for chunk in live:
            meta = dict(chunk.meta)
            meta["source"] = to.source
            meta["title"] = chunk_title(to.source, str(meta.get("heading", "")))
            metas[chunk.id] = meta
        self.store.update_metadata(chroma, list(metas), [scalar_meta(m) for m in metas.values()])
        self.ledger.move(row.id, stored_path(to.path), to.source, metas)
