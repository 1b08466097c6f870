"""The ledger: every document and chunk of a collection, the source of truth for what
the vector store should hold (the `documents` and `chunks` tables, in the memory database).

Writes that span SQL and Chroma follow one protocol, so that a process killed at any
instant leaves a state the next run repairs exactly:

1. `stage`: the chunks about to be written are recorded as `pending` (and a new
   document with an empty hash, meaning "not complete").
2. Chroma: upsert the pending vectors. Steps 1 and 2 repeat, a bounded slice of
   chunks at a time, until the document's new chunks are all written.
3. Chroma: update kept chunks' metadata, nothing deleted. `commit`: pending becomes
   `live`, the document gets its new hash, and chunks that the new version no longer
   has become `deleting`.
4. Chroma: delete the `deleting` ids.
5. `purge`: delete the `deleting` rows.

`unfinished` lists what a killed run left in states 1 to 3. Deleting chunks are
removed from Chroma, then their rows go. Pending chunks whose vectors reached
Chroma are kept when the next run ingests their document again (`pending_chunks`):
it writes only what is missing, so a large file resumes where it stopped. Other
pending chunks are removed from Chroma and their rows dropped (the document keeps
its old hash, so it is simply done again), and so are kept ones that the run did not
claim (`forget_unfinished` at its end).

The keyword index (retrievers.keyword_index) is written inside step 3 and document
removals: a chunk is in it exactly while it is live. A document's stored summaries
(retrievers.summaries) go in the same transaction as its new version, move or removal.
Transactions and their retry are memory.db's `Database`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from memory.db import Database
from retrievers.catalog_tables import chunks, documents
from retrievers.keyword_index import KeywordIndex, KeywordRow
from retrievers.summaries import remove_document_summaries

__all__ = ["DELETING", "LIVE", "PENDING", "ChunkRow", "DocumentRow", "Ledger", "StagedDocument"]

LIVE, PENDING, DELETING = "live", "pending", "deleting"
_SLICE = 500  # ids per IN (...) list


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DocumentRow:
    id: int
    doc_key: str
    path: str
    source: str
    file_hash: str
    size: int


@dataclass(frozen=True)
class ChunkRow:
    id: str
    seq: int
    chunk_hash: str
    text: str
    meta: dict[str, Any]

    def keyword_row(self) -> KeywordRow:
        return KeywordRow(self.id, str(self.meta.get("heading", "")), self.text)


@dataclass
class StagedDocument:
    """A new or changed document on its way into the index (see the module's protocol)."""

    path: str
    source: str
    kind: str
    file_hash: str
    size: int
    doc_key: str
    chunks: list[ChunkRow]
    document_id: int | None = None  # None: new document
    fresh_ids: frozenset[str] = frozenset()  # chunks not already live (to embed, unless resumed)
    resumed: frozenset[str] = frozenset()  # fresh chunks already pending and in Chroma (a killed run's)
    restamped: frozenset[str] = frozenset()  # live chunks kept whose position or metadata changed
    stale_ids: tuple[str, ...] = ()  # live chunks the new version no longer has


def _chunk(r: Any) -> ChunkRow:
    return ChunkRow(r.id, r.seq, r.chunk_hash, r.text, dict(r.meta))


class Ledger:
    """Reads and writes the documents and chunks tables, and the keyword index with them."""

    def __init__(self, db: Database, keywords: KeywordIndex) -> None:
        self.db = db
        self.keywords = keywords

    # Reads -----------------------------------------------------------------------------

    def documents(self, collection_id: int) -> dict[str, DocumentRow]:
        """Complete documents by path (a document still being written has no hash yet)."""
        with self.db.read_rows() as conn:
            rows = conn.execute(
                select(
                    documents.c.id,
                    documents.c.doc_key,
                    documents.c.path,
                    documents.c.source,
                    documents.c.file_hash,
                    documents.c.size,
                ).where(documents.c.collection_id == collection_id, documents.c.file_hash != "")
            ).all()
        return {r.path: DocumentRow(r.id, r.doc_key, r.path, r.source, r.file_hash, r.size) for r in rows}

    def doc_keys(self, collection_id: int) -> set[str]:
        with self.db.read_rows() as conn:
            return set(conn.scalars(select(documents.c.doc_key).where(documents.c.collection_id == collection_id)))

    def live_chunks(self, collection_id: int, document_ids: Sequence[int]) -> dict[int, list[ChunkRow]]:
        return self._chunks(collection_id, document_ids, LIVE)

    def document_chunks(self, collection_id: int, document_id: int) -> list[ChunkRow]:
        """The live chunks of one document in document order (for its summary's sections)."""
        with self.db.read_rows() as conn:
            rows = conn.execute(
                select(chunks)
                .where(
                    chunks.c.collection_id == collection_id,
                    chunks.c.document_id == document_id,
                    chunks.c.state == LIVE,
                )
                .order_by(chunks.c.seq)
            ).all()
        return [_chunk(r) for r in rows]

    def pending_chunks(self, collection_id: int, document_ids: Sequence[int]) -> dict[int, list[ChunkRow]]:
        """Chunks an interrupted run wrote and kept for resuming (see the module's protocol)."""
        return self._chunks(collection_id, document_ids, PENDING)

    def _chunks(self, collection_id: int, document_ids: Sequence[int], state: str) -> dict[int, list[ChunkRow]]:
        found: dict[int, list[ChunkRow]] = defaultdict(list)
        with self.db.read_rows() as conn:
            for start in range(0, len(document_ids), _SLICE):
                rows = conn.execute(
                    select(chunks).where(
                        chunks.c.collection_id == collection_id,
                        chunks.c.document_id.in_(document_ids[start : start + _SLICE]),
                        chunks.c.state == state,
                    )
                ).all()
                for r in rows:
                    found[r.document_id].append(_chunk(r))
        return found

    def has_unfinished(self, collection_id: int) -> bool:
        with self.db.read_rows() as conn:
            stray = conn.scalar(
                select(func.count()).where(chunks.c.collection_id == collection_id, chunks.c.state != LIVE)
            )
            incomplete = conn.scalar(
                select(func.count()).where(documents.c.collection_id == collection_id, documents.c.file_hash == "")
            )
        return bool(stray or incomplete)

    def unfinished(self, collection_id: int) -> list[str]:
        """Ids of chunks a killed run left pending or deleting: remove them from Chroma, then `forget_unfinished`."""
        with self.db.read_rows() as conn:
            return list(
                conn.scalars(select(chunks.c.id).where(chunks.c.collection_id == collection_id, chunks.c.state != LIVE))
            )

    def incomplete_documents(self, collection_id: int) -> dict[str, DocumentRow]:
        """Documents whose first version an interrupted run began to write, by path."""
        with self.db.read_rows() as conn:
            rows = conn.execute(
                select(
                    documents.c.id, documents.c.doc_key, documents.c.path, documents.c.source, documents.c.size
                ).where(documents.c.collection_id == collection_id, documents.c.file_hash == "")
            ).all()
        return {r.path: DocumentRow(r.id, r.doc_key, r.path, r.source, "", r.size) for r in rows}

    def pending_paths(self, collection_id: int) -> list[tuple[str, str]]:
        """(chunk id, document path) of every pending chunk."""
        with self.db.read_rows() as conn:
            return [
                (r.id, r.path)
                for r in conn.execute(
                    select(chunks.c.id, documents.c.path)
                    .join(documents, documents.c.id == chunks.c.document_id)
                    .where(chunks.c.collection_id == collection_id, chunks.c.state == PENDING)
                )
            ]

    def iter_live_chunks(self, collection_id: int, page: int = 512) -> Iterator[list[ChunkRow]]:
        """Every live chunk, a page at a time in a stable order (for reindex and checks)."""
        after = ""
        while True:
            with self.db.read_rows() as conn:
                rows = conn.execute(
                    select(chunks)
                    .where(chunks.c.collection_id == collection_id, chunks.c.state == LIVE, chunks.c.id > after)
                    .order_by(chunks.c.id)
                    .limit(page)
                ).all()
            if not rows:
                return
            yield [_chunk(r) for r in rows]
            after = rows[-1].id

    def keyword_pages(self, collection_id: int, page: int = 1000) -> Iterator[list[KeywordRow]]:
        """Every live chunk as the keyword index takes it, a page at a time (to rebuild it)."""
        for rows in self.iter_live_chunks(collection_id, page=page):
            yield [c.keyword_row() for c in rows]

    def live_count(self, collection_id: int) -> int:
        with self.db.read_rows() as conn:
            return int(
                conn.scalar(select(func.count()).where(chunks.c.collection_id == collection_id, chunks.c.state == LIVE))
                or 0
            )

    def around(
        self, collection_id: int, chunk_ids: Sequence[str], before: int, after: int
    ) -> dict[str, list[ChunkRow]]:
        """For each chunk, the live chunks of its document from `before` before it to `after` after it, in order."""
        found: dict[str, list[ChunkRow]] = {}
        with self.db.read_rows() as conn:
            anchors = conn.execute(
                select(chunks.c.id, chunks.c.document_id, chunks.c.seq).where(
                    chunks.c.collection_id == collection_id, chunks.c.id.in_(list(chunk_ids))
                )
            ).all()
            for anchor in anchors:
                rows = conn.execute(
                    select(chunks)
                    .where(
                        chunks.c.document_id == anchor.document_id,
                        chunks.c.seq.between(anchor.seq - before, anchor.seq + after),
                        chunks.c.state == LIVE,
                    )
                    .order_by(chunks.c.seq)
                ).all()
                found[anchor.id] = [_chunk(r) for r in rows]
        return found

    # The write protocol ---------------------------------------------------------------------

    def stage(
        self, collection_id: int, staged: Sequence[StagedDocument], chunk_ids: AbstractSet[str] | None = None
    ) -> None:
        """Step 1: record new documents (incomplete) and the chunks about to be written:
        `chunk_ids`, or (None) every fresh chunk not resumed."""
        now = _now()

        def work(conn: Connection) -> dict[int, int]:
            new_ids: dict[int, int] = {}  # index in `staged` -> its new row (set on the documents once committed)
            rows: list[dict[str, Any]] = []
            for n, doc in enumerate(staged):
                document_id = doc.document_id
                if document_id is None:
                    document_id = new_ids[n] = conn.execute(
                        insert(documents)
                        .values(
                            collection_id=collection_id,
                            doc_key=doc.doc_key,
                            path=doc.path,
                            source=doc.source,
                            kind=doc.kind,
                            file_hash="",
                            size=doc.size,
                            chunk_count=0,
                            updated_at=now,
                        )
                        .returning(documents.c.id)
                    ).scalar_one()
                rows.extend(
                    {
                        "collection_id": collection_id,
                        "id": c.id,
                        "document_id": document_id,
                        "seq": c.seq,
                        "chunk_hash": c.chunk_hash,
                        "text": c.text,
                        "meta": c.meta,
                        "state": PENDING,
                    }
                    for c in doc.chunks
                    if (c.id in chunk_ids if chunk_ids is not None else c.id in doc.fresh_ids - doc.resumed)
                )
            if rows:
                conn.execute(insert(chunks), rows)
            return new_ids

        for n, document_id in self.db.write_rows(work).items():
            staged[n].document_id = document_id

    def commit(self, collection_id: int, staged: Sequence[StagedDocument]) -> None:
        """Step 3: the new versions become live; chunks they dropped become deleting."""
        now = _now()

        def work(conn: Connection) -> None:
            scheme = self.keywords.scheme(conn, collection_id)
            for doc in staged:
                conn.execute(
                    update(chunks)
                    .where(chunks.c.collection_id == collection_id, chunks.c.document_id == doc.document_id)
                    .where(chunks.c.state == PENDING)
                    .values(state=LIVE)
                )
                if scheme is not None and scheme.current:  # otherwise a keyword rebuild builds it whole
                    fresh = [c.keyword_row() for c in doc.chunks if c.id in doc.fresh_ids]
                    self.keywords.add(conn, collection_id, fresh, scheme.language)
                    self.keywords.remove(conn, collection_id, doc.stale_ids)
                for start in range(0, len(doc.stale_ids), _SLICE):
                    conn.execute(
                        update(chunks)
                        .where(chunks.c.collection_id == collection_id)
                        .where(chunks.c.id.in_(doc.stale_ids[start : start + _SLICE]))
                        .values(state=DELETING)
                    )
                for c in (c for c in doc.chunks if c.id in doc.restamped):
                    conn.execute(
                        update(chunks)
                        .where(chunks.c.collection_id == collection_id, chunks.c.id == c.id)
                        .values(seq=c.seq, meta=c.meta)
                    )
                assert doc.document_id is not None  # set by `stage`
                remove_document_summaries(conn, doc.document_id)  # made from the version replaced
                conn.execute(
                    update(documents)
                    .where(documents.c.id == doc.document_id)
                    .values(
                        file_hash=doc.file_hash,
                        size=doc.size,
                        kind=doc.kind,
                        source=doc.source,
                        chunk_count=len(doc.chunks),
                        updated_at=now,
                    )
                )

        self.db.write_rows(work)

    def purge(self, collection_id: int, ids: Sequence[str]) -> None:
        """Step 5: drop the rows of chunks already deleted from Chroma."""

        def work(conn: Connection) -> None:
            for start in range(0, len(ids), _SLICE):
                conn.execute(
                    delete(chunks).where(
                        and_(chunks.c.collection_id == collection_id, chunks.c.id.in_(ids[start : start + _SLICE]))
                    )
                )

        self.db.write_rows(work)

    # Recovery, moves and removals -----------------------------------------------------------

    def forget_chunks(self, collection_id: int, ids: Sequence[str]) -> None:
        """Drop the rows of unfinished chunks already removed from Chroma, and the incomplete
        documents left with no chunk."""
        self.purge(collection_id, ids)
        self.db.write_rows(
            lambda conn: conn.execute(
                delete(documents).where(
                    documents.c.collection_id == collection_id,
                    documents.c.file_hash == "",
                    ~select(chunks.c.id).where(chunks.c.document_id == documents.c.id).exists(),
                )
            )
        )

    def forget_unfinished(self, collection_id: int) -> None:
        def work(conn: Connection) -> None:
            conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id, chunks.c.state != LIVE))
            conn.execute(
                delete(documents).where(documents.c.collection_id == collection_id, documents.c.file_hash == "")
            )

        self.db.write_rows(work)

    def move(self, document_id: int, path: str, source: str, metas: dict[str, dict[str, Any]]) -> None:
        updated = _now()

        def work(conn: Connection) -> None:
            conn.execute(
                update(documents)
                .where(documents.c.id == document_id)
                .values(path=path, source=source, updated_at=updated)
            )
            remove_document_summaries(conn, document_id)  # their citations name the old source
            for chunk_id, meta in metas.items():
                conn.execute(
                    update(chunks).where(chunks.c.document_id == document_id, chunks.c.id == chunk_id).values(meta=meta)
                )

        self.db.write_rows(work)

    def remove_document(self, collection_id: int, document_id: int) -> None:
        def work(conn: Connection) -> None:
            ids = list(conn.scalars(select(chunks.c.id).where(chunks.c.document_id == document_id)))
            self.keywords.remove(conn, collection_id, ids)
            conn.execute(
                delete(chunks).where(chunks.c.collection_id == collection_id, chunks.c.document_id == document_id)
            )
            remove_document_summaries(conn, document_id)
            conn.execute(delete(documents).where(documents.c.id == document_id))

        self.db.write_rows(work)
