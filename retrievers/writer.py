"""Embed and write new and changed documents into a collection, following the ledger's
crash-safe protocol (retrievers.ledger): stage a slice of chunks, upsert their vectors,
and commit a document once all its chunks are written.

Chunks are embedded and written `batch_chunks` at a time whatever the files' sizes, the
lease renewed after each batch, so a large file makes progress, reports it, and resumes
after a kill. A file whose text the embedder refuses is reported; the others go on.
Progress is sent as each file starts being read, as its parser says what it is doing
(OCR page by page), after every `embed_chunks` chunks embedded, and as each batch is
written (retrievers.report has the phases). The report counts the files indexed by kind
and the pages read with OCR.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.errors import AssistantError
from assistant.settings import DocumentSettings
from retrievers.catalog import CollectionRow
from retrievers.lease import Holding
from retrievers.ledger import ChunkRow, DocumentRow, Ledger, StagedDocument
from retrievers.reading import Candidate, FileReader
from retrievers.report import EMBEDDING, LOADING_EMBEDDER, READING, WRITING, FileIssue, IngestProgress, IngestReport
from retrievers.scan import stored_path
from retrievers.splitter import content_hash, embedding_text
from retrievers.store import ChunkStore, scalar_meta

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["DocumentWriter", "batch_chunks"]

log = logging.getLogger(__name__)


def batch_chunks(settings: DocumentSettings) -> int:
    """Chunks embedded and written together (a larger file takes several batches)."""
    return 4 * settings.embedding_batch_size


def _chunk_id(doc_key: str, chunk_hash: str, occurrence: int) -> str:
    return content_hash(f"{doc_key}\0{chunk_hash}\0{occurrence}")[:40]


@dataclass(eq=False)  # compared by identity: two documents are never the same
class _Open:
    """A document staged in this run, written a slice at a time, committed once all is written."""

    candidate: Candidate
    doc: StagedDocument
    notes: list[str]
    waiting: int  # its chunks not yet embedded and written
    ocr_pages: int = 0
    ocr_seconds: float = 0.0


class DocumentWriter:
    """Writes one run's candidates into one collection's Chroma index and ledger."""

    def __init__(
        self,
        ledger: Ledger,
        store: ChunkStore,
        embeddings: Embeddings,
        reader: FileReader,
        batch_chunks: int,
        embed_chunks: int,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.embeddings = embeddings
        self.reader = reader
        self.batch_chunks = batch_chunks
        self.embed_chunks = embed_chunks  # per embedding call: a progress event after each

    def write_all(
        self,
        col: CollectionRow,
        chroma: Collection,
        candidates: list[Candidate],
        holding: Holding,
        report: IngestReport,
        started: float,
        on_progress: Callable[[IngestProgress], None] | None,
    ) -> None:
        """Embed and write the candidates' chunks `batch_chunks` at a time, whatever the files'
        sizes; a document is committed once all its chunks are written."""
        keys = self.ledger.doc_keys(col.id)
        leftovers = self.ledger.incomplete_documents(col.id)
        opened: list[_Open] = []  # staged, in order; only the last ones may still wait for chunks
        queued: list[tuple[_Open, ChunkRow]] = []  # chunks to embed, in order
        done = 0
        embedded = False  # the run's first embedding call loads the model
        path = ""

        def progress(phase: str, batch_done: int = 0, batch_total: int = 0, activity: str = "") -> None:
            if on_progress:
                elapsed = max(time.perf_counter() - started, 1e-6)
                rate = report.chunks_added / elapsed
                on_progress(
                    IngestProgress(
                        done,
                        len(candidates),
                        report.chunks_added,
                        rate,
                        path,
                        phase,
                        batch_done,
                        batch_total,
                        activity=activity,
                    )
                )

        def write(count: int) -> None:
            nonlocal queued, opened, done, embedded, path
            batch, queued = queued[:count], queued[count:]

            def embedded_so_far(n: int) -> None:
                nonlocal path
                path = batch[min(n, len(batch)) - 1][0].candidate.source
                progress(EMBEDDING if n < len(batch) else WRITING, n, len(batch))

            if batch and not embedded:
                path = batch[0][0].candidate.source
                progress(LOADING_EMBEDDER, 0, len(batch))
                embedded = True
            failed = self._write_slice(col, chroma, batch, report, embedded_so_far)
            if failed:
                queued = [(o, c) for o, c in queued if o not in failed]
                opened = [o for o in opened if o not in failed]
                done += len(failed)
            ready = [o for o in opened if o.waiting == 0]
            if ready:
                self._commit(col, chroma, ready, report)
                opened = [o for o in opened if o.waiting > 0]
                done += len(ready)
            holding.renew()
            progress(WRITING, len(batch), len(batch))

        def reading(candidate: Candidate) -> None:
            nonlocal path
            path = candidate.source
            progress(READING)

        def active(candidate: Candidate, text: str) -> None:
            nonlocal path
            path = candidate.source
            progress(READING, activity=text)

        every_s = min(30.0, holding.ttl_s / 4)
        parsing = self.reader.parse_ahead(candidates, holding.renew, every_s, reading, active if on_progress else None)
        for candidate, parsed in parsing:
            path = str(candidate.source)
            if isinstance(parsed, FileIssue):
                done += 1
                report.files_failed.append(parsed)
                log.info("not indexed: %s: %s", parsed.path, parsed.reason)
                progress(READING)
                continue
            doc = self._stage(col, candidate, parsed.chunks, keys, leftovers)
            report.chunks_resumed += len(doc.resumed)
            todo = [c for c in doc.chunks if c.id in doc.fresh_ids and c.id not in doc.resumed]
            item = _Open(candidate, doc, parsed.notes, len(todo), parsed.ocr_pages, parsed.ocr_seconds)
            opened.append(item)
            queued.extend((item, c) for c in todo)
            while len(queued) >= self.batch_chunks:
                write(self.batch_chunks)
        if queued or opened:
            write(len(queued))

    def _stage(
        self,
        col: CollectionRow,
        candidate: Candidate,
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
            doc_key = content_hash(f"{col.name}\0{path}")[:24]
            while doc_key in keys:
                salt += 1
                doc_key = content_hash(f"{col.name}\0{path}\0{salt}")[:24]
            keys.add(doc_key)
        seen: Counter[str] = Counter()
        rows = []
        for seq, chunk in enumerate(sections):
            heading = str(chunk.metadata.get("heading", ""))
            chunk_hash = content_hash(f"{heading}\n{chunk.page_content}")
            seen[chunk_hash] += 1
            chunk_id = _chunk_id(doc_key, chunk_hash, seen[chunk_hash])
            meta = scalar_meta({**chunk.metadata, "source": candidate.source, "chunk_index": seq, "doc_key": doc_key})
            rows.append(ChunkRow(chunk_id, seq, chunk_hash, chunk.page_content, meta))
        live: dict[str, ChunkRow] = {}
        pending: dict[str, ChunkRow] = {}
        if known is not None:
            live = {c.id: c for c in self.ledger.live_chunks(col.id, [known.id]).get(known.id, [])}
            pending = {c.id: c for c in self.ledger.pending_chunks(col.id, [known.id]).get(known.id, [])}
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

    def _write_slice(
        self,
        col: CollectionRow,
        chroma: Collection,
        batch: list[tuple[_Open, ChunkRow]],
        report: IngestReport,
        embedded_so_far: Callable[[int], None],
    ) -> set[_Open]:
        """Steps 1 and 2 of the protocol for one slice of chunks; returns the documents that
        could not be embedded, reported and left out of the run."""
        failed: set[_Open] = set()
        vectors, refused = self._embed_in_steps([c for _, c in batch], embedded_so_far)
        if refused is not None:  # find the file whose text the embedder refuses; the others go on
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
                    raise refused  # not a file's problem: every file of the batch fails alike
            for item in failed:
                reason = f"could not be embedded ({type(refused).__name__}: {refused})"
                report.files_failed.append(FileIssue(item.candidate.source, reason))
                log.info("not indexed: %s: %s", item.candidate.source, reason)
            batch = [(o, c) for o, c in batch if o not in failed]
            vectors = self._embed([c for _, c in batch])
        docs = [o.doc for o in dict.fromkeys(o for o, _ in batch)]
        self.ledger.stage(col.id, docs, {c.id for _, c in batch})
        self.store.upsert(
            chroma, [c.id for _, c in batch], [c.text for _, c in batch], [c.meta for _, c in batch], vectors
        )
        for item, _ in batch:
            item.waiting -= 1
        report.chunks_added += len(batch)
        return failed

    def _embed_in_steps(
        self, chunks: list[ChunkRow], embedded_so_far: Callable[[int], None]
    ) -> tuple[list[list[float]], Exception | None]:
        """The chunks' vectors, `embed_chunks` per call, `embedded_so_far` told after each;
        or the error of the call the embedder refused (our own errors are raised)."""
        vectors: list[list[float]] = []
        for start in range(0, len(chunks), self.embed_chunks):
            try:
                vectors += self._embed(chunks[start : start + self.embed_chunks])
            except AssistantError:
                raise
            except Exception as exc:  # one file's text, or the embedder itself: the caller tells which
                return [], exc
            embedded_so_far(len(vectors))  # outside the try: a failing progress callback is not the file's fault
        return vectors, None

    def _embed(self, chunks: list[ChunkRow]) -> list[list[float]]:
        return self.embeddings.embed_documents([embedding_text(c.meta, c.text) for c in chunks]) if chunks else []

    def _commit(self, col: CollectionRow, chroma: Collection, ready: list[_Open], report: IngestReport) -> None:
        """Steps 3 to 5 of the protocol for documents whose new chunks are all written."""
        docs = [o.doc for o in ready]
        kept = [c for doc in docs for c in doc.chunks if c.id in doc.restamped]
        self.store.update_metadata(chroma, [c.id for c in kept], [c.meta for c in kept])
        self.ledger.commit(col.id, docs)
        stale = [i for doc in docs for i in doc.stale_ids]
        self.store.remove(chroma, stale)
        self.ledger.purge(col.id, stale)
        report.chunks_deleted += len(stale)
        for item in ready:
            if item.candidate.existing is None:
                report.files_new += 1
            else:
                report.files_changed += 1
            report.count_kind(item.candidate.kind)
            report.ocr_pages += item.ocr_pages
            report.ocr_seconds += item.ocr_seconds
            if item.notes:
                report.files_partial.append(FileIssue(item.candidate.source, "; ".join(item.notes)))
