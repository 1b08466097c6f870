"""The SQL record of every collection, document and chunk (same database as memory).

It is the source of truth for what the vector store should hold. Writes that span
SQL and Chroma follow one protocol, so that a process killed at any instant leaves
a state the next run repairs exactly:

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

The keyword index (retrievers.keywords) is written inside steps 3 and the document
and collection deletions: a chunk is in it exactly while it is live.

A collection also carries a lease lock (`lock_owner`, `lock_until`; see
retrievers.lease), so that two processes never write one collection at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from assistant.errors import CollectionExistsError, StoreUnavailableError, UnknownCollectionError
from memory.engine import describe_failure, safe_url, write_transaction
from memory.migrate import upgrade
from retrievers.catalog_tables import chunks, collections, documents
from retrievers.embedder import EmbedderInfo, EmbedderSpec
from retrievers.keywords import KeywordRow, KeywordScheme, keyword_backend
from retrievers.lease import CollectionLease

__all__ = [
    "Catalog",
    "ChunkRow",
    "CollectionInfo",
    "CollectionRow",
    "DocumentRow",
    "StagedDocument",
]

LIVE, PENDING, DELETING = "live", "pending", "deleting"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CollectionRow:
    id: int
    name: str
    chroma_name: str
    generation: int
    embedder: EmbedderInfo
    building: dict[str, Any] | None
    local_only: bool = False
    keywords: KeywordScheme | None = None  # None: no keyword index built yet
    owner: str | None = None  # the user a private collection belongs to; None: shared
    created_by: str | None = None  # the user who may write it over HTTP (and admin keys); None: the CLI made it


@dataclass(frozen=True)
class CollectionInfo:
    """What `describe` shows about a collection."""

    name: str
    embedder: str
    dimension: int
    normalized: bool
    documents: int
    chunks: int
    bytes: int  # total size of its source documents
    created_at: datetime
    updated_at: datetime
    reindexing: bool
    local_only: bool  # its questions are never sent to a large model
    keywords: str  # "english", "none" (no stemming) or "not built": run reindex
    owner: str | None = None  # the user a private collection belongs to; None: shared
    created_by: str | None = None  # the user who may write it over HTTP (and admin keys); None: the CLI made it


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


def _embedder_to_json(info: EmbedderInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "dimension": info.dimension,
        "normalized": info.normalized,
        "spec": info.spec.to_dict() if info.spec else None,
    }


def _embedder_from_json(value: dict[str, Any]) -> EmbedderInfo:
    spec = value.get("spec")
    return EmbedderInfo(
        name=str(value["name"]),
        dimension=int(value["dimension"]),
        normalized=bool(value.get("normalized", False)),
        spec=EmbedderSpec.from_dict(spec) if spec else None,
    )


def _row(row: Any) -> CollectionRow:
    return CollectionRow(
        id=row.id,
        name=row.name,
        chroma_name=row.chroma_name,
        generation=row.generation,
        embedder=_embedder_from_json(row.embedder),
        building=row.building,
        local_only=bool(row.local_only),
        keywords=KeywordScheme.from_dict(row.keywords),
        owner=row.owner,
        created_by=row.created_by,
    )


def _keyword_row(chunk_id: str, body: str, meta: dict[str, Any]) -> KeywordRow:
    return KeywordRow(chunk_id, str(meta.get("heading", "")), body)


class Catalog:
    """Reads and writes the catalog tables; brings the schema up to date first."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade(engine)
        self.lease = CollectionLease(self._tx)
        self.keywords = keyword_backend(engine.dialect.name)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (DBAPIError, OSError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            if isinstance(exc, DBAPIError):
                problem, fix = describe_failure(exc)
            else:
                problem, fix = f"cannot be used ({exc})", "Check that its files are writable."
            raise StoreUnavailableError(f"database {safe_url(str(self.engine.url))}", problem, fix) from exc

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._guard(), write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self.engine.connect() as conn:
            yield conn

    # Collections ---------------------------------------------------------------------

    def get(self, name: str) -> CollectionRow | None:
        with self._read() as conn:
            row = conn.execute(select(collections).where(collections.c.name == name)).first()
        return _row(row) if row else None

    def require(self, name: str) -> CollectionRow:
        found = self.get(name)
        if found is None:
            raise UnknownCollectionError(name, self.names())
        return found

    def names(self, visible_to: str | None = None) -> list[str]:
        """Every collection's name; with `visible_to`, only the shared ones and that user's private ones."""
        query = select(collections.c.name).order_by(collections.c.name)
        if visible_to is not None:
            query = query.where((collections.c.owner.is_(None)) | (collections.c.owner == visible_to))
        with self._read() as conn:
            return list(conn.scalars(query))

    def create(
        self,
        name: str,
        chroma_name: str,
        embedder: EmbedderInfo,
        *,
        local_only: bool = False,
        keywords: KeywordScheme | None = None,
        owner: str | None = None,
        created_by: str | None = None,
    ) -> CollectionRow:
        now = _now()
        try:
            with self._tx() as conn:
                conn.execute(
                    insert(collections).values(
                        name=name,
                        chroma_name=chroma_name,
                        generation=1,
                        embedder=_embedder_to_json(embedder),
                        local_only=local_only,
                        owner=owner,
                        created_by=created_by,
                        keywords=(keywords or KeywordScheme()).to_dict(),
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise CollectionExistsError(name) from None
        return self.require(name)

    def delete(self, collection_id: int) -> None:
        with self._tx() as conn:
            self.keywords.drop_collection(conn, collection_id)
            conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id))
            conn.execute(delete(documents).where(documents.c.collection_id == collection_id))
            conn.execute(delete(collections).where(collections.c.id == collection_id))

    def info(self, name: str) -> CollectionInfo:
        col = self.require(name)
        with self._read() as conn:
            row = conn.execute(select(collections).where(collections.c.id == col.id)).one()
            docs, size = conn.execute(
                select(func.count(), func.coalesce(func.sum(documents.c.size), 0)).where(
                    documents.c.collection_id == col.id, documents.c.file_hash != ""
                )
            ).one()
            count = conn.scalar(select(func.count()).where(chunks.c.collection_id == col.id, chunks.c.state == LIVE))
        return CollectionInfo(
            name=name,
            embedder=col.embedder.name,
            dimension=col.embedder.dimension,
            normalized=col.embedder.normalized,
            documents=int(docs),
            chunks=int(count or 0),
            bytes=int(size),
            created_at=row.created_at,
            updated_at=row.updated_at,
            reindexing=col.building is not None,
            local_only=col.local_only,
            keywords=col.keywords.language if col.keywords and col.keywords.current else "not built",
            owner=col.owner,
            created_by=col.created_by,
        )

    def set_local_only(self, name: str, local_only: bool) -> None:
        col = self.require(name)
        with self._tx() as conn:
            conn.execute(update(collections).where(collections.c.id == col.id).values(local_only=local_only))

    def set_building(self, collection_id: int, building: dict[str, Any] | None) -> None:
        with self._tx() as conn:
            conn.execute(update(collections).where(collections.c.id == collection_id).values(building=building))

    def switch(self, collection_id: int, chroma_name: str, embedder: EmbedderInfo, generation: int) -> None:
        """Point the collection at its rebuilt index, in one transaction."""
        with self._tx() as conn:
            conn.execute(
                update(collections)
                .where(collections.c.id == collection_id)
                .values(
                    chroma_name=chroma_name,
                    embedder=_embedder_to_json(embedder),
                    generation=generation,
                    building=None,
                    updated_at=_now(),
                )
            )

    # Documents and chunks -----------------------------------------------------------------

    def documents(self, collection_id: int) -> dict[str, DocumentRow]:
        """Complete documents by path (a document still being written has no hash yet)."""
        with self._read() as conn:
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
        with self._read() as conn:
            return set(conn.scalars(select(documents.c.doc_key).where(documents.c.collection_id == collection_id)))

    def live_chunks(self, collection_id: int, document_ids: Sequence[int]) -> dict[int, list[ChunkRow]]:
        return self._chunks(collection_id, document_ids, LIVE)

    def pending_chunks(self, collection_id: int, document_ids: Sequence[int]) -> dict[int, list[ChunkRow]]:
        """Chunks an interrupted run wrote and kept for resuming (see the module's protocol)."""
        return self._chunks(collection_id, document_ids, PENDING)

    def _chunks(self, collection_id: int, document_ids: Sequence[int], state: str) -> dict[int, list[ChunkRow]]:
        found: dict[int, list[ChunkRow]] = defaultdict(list)
        with self._read() as conn:
            for start in range(0, len(document_ids), 500):
                rows = conn.execute(
                    select(chunks).where(
                        chunks.c.collection_id == collection_id,
                        chunks.c.document_id.in_(document_ids[start : start + 500]),
                        chunks.c.state == state,
                    )
                ).all()
                for r in rows:
                    found[r.document_id].append(ChunkRow(r.id, r.seq, r.chunk_hash, r.text, dict(r.meta)))
        return found

    def has_unfinished(self, collection_id: int) -> bool:
        with self._read() as conn:
            stray = conn.scalar(
                select(func.count()).where(chunks.c.collection_id == collection_id, chunks.c.state != LIVE)
            )
            incomplete = conn.scalar(
                select(func.count()).where(documents.c.collection_id == collection_id, documents.c.file_hash == "")
            )
        return bool(stray or incomplete)

    def unfinished(self, collection_id: int) -> list[str]:
        """Ids of chunks a killed run left pending or deleting: remove them from Chroma, then `forget_unfinished`."""
        with self._read() as conn:
            return list(
                conn.scalars(select(chunks.c.id).where(chunks.c.collection_id == collection_id, chunks.c.state != LIVE))
            )

    def incomplete_documents(self, collection_id: int) -> dict[str, DocumentRow]:
        """Documents whose first version an interrupted run began to write, by path."""
        with self._read() as conn:
            rows = conn.execute(
                select(
                    documents.c.id, documents.c.doc_key, documents.c.path, documents.c.source, documents.c.size
                ).where(documents.c.collection_id == collection_id, documents.c.file_hash == "")
            ).all()
        return {r.path: DocumentRow(r.id, r.doc_key, r.path, r.source, "", r.size) for r in rows}

    def pending_paths(self, collection_id: int) -> list[tuple[str, str]]:
        """(chunk id, document path) of every pending chunk."""
        with self._read() as conn:
            return [
                (r.id, r.path)
                for r in conn.execute(
                    select(chunks.c.id, documents.c.path)
                    .join(documents, documents.c.id == chunks.c.document_id)
                    .where(chunks.c.collection_id == collection_id, chunks.c.state == PENDING)
                )
            ]

    def forget_chunks(self, collection_id: int, ids: Sequence[str]) -> None:
        """Drop the rows of unfinished chunks already removed from Chroma, and the incomplete
        documents left with no chunk."""
        self.purge(collection_id, ids)
        with self._tx() as conn:
            conn.execute(
                delete(documents).where(
                    documents.c.collection_id == collection_id,
                    documents.c.file_hash == "",
                    ~select(chunks.c.id).where(chunks.c.document_id == documents.c.id).exists(),
                )
            )

    def forget_unfinished(self, collection_id: int) -> None:
        with self._tx() as conn:
            conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id, chunks.c.state != LIVE))
            conn.execute(
                delete(documents).where(documents.c.collection_id == collection_id, documents.c.file_hash == "")
            )

    def stage(
        self, collection_id: int, staged: Sequence[StagedDocument], chunk_ids: AbstractSet[str] | None = None
    ) -> None:
        """Step 1: record new documents (incomplete) and the chunks about to be written:
        `chunk_ids`, or (None) every fresh chunk not resumed."""
        now = _now()
        with self._tx() as conn:
            rows: list[dict[str, Any]] = []
            for doc in staged:
                if doc.document_id is None:
                    doc.document_id = conn.execute(
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
                        "document_id": doc.document_id,
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

    def commit(self, collection_id: int, staged: Sequence[StagedDocument]) -> None:
        """Step 3: the new versions become live; chunks they dropped become deleting."""
        now = _now()
        with self._tx() as conn:
            scheme = KeywordScheme.from_dict(
                conn.scalar(select(collections.c.keywords).where(collections.c.id == collection_id))
            )
            for doc in staged:
                conn.execute(
                    update(chunks)
                    .where(chunks.c.collection_id == collection_id, chunks.c.document_id == doc.document_id)
                    .where(chunks.c.state == PENDING)
                    .values(state=LIVE)
                )
                if scheme is not None and scheme.current:  # otherwise rebuild_keywords builds it whole
                    fresh = [_keyword_row(c.id, c.text, c.meta) for c in doc.chunks if c.id in doc.fresh_ids]
                    self.keywords.add(conn, collection_id, fresh, scheme.language)
                    self.keywords.remove(conn, collection_id, doc.stale_ids)
                for start in range(0, len(doc.stale_ids), 500):
                    conn.execute(
                        update(chunks)
                        .where(chunks.c.collection_id == collection_id)
                        .where(chunks.c.id.in_(doc.stale_ids[start : start + 500]))
                        .values(state=DELETING)
                    )
                for c in (c for c in doc.chunks if c.id in doc.restamped):
                    conn.execute(
                        update(chunks)
                        .where(chunks.c.collection_id == collection_id, chunks.c.id == c.id)
                        .values(seq=c.seq, meta=c.meta)
                    )
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

    def purge(self, collection_id: int, ids: Sequence[str]) -> None:
        """Step 5: drop the rows of chunks already deleted from Chroma."""
        with self._tx() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(
                    delete(chunks).where(
                        and_(chunks.c.collection_id == collection_id, chunks.c.id.in_(ids[start : start + 500]))
                    )
                )

    def move(self, document_id: int, path: str, source: str, metas: dict[str, dict[str, Any]]) -> None:
        with self._tx() as conn:
            conn.execute(
                update(documents)
                .where(documents.c.id == document_id)
                .values(path=path, source=source, updated_at=_now())
            )
            for chunk_id, meta in metas.items():
                conn.execute(
                    update(chunks).where(chunks.c.document_id == document_id, chunks.c.id == chunk_id).values(meta=meta)
                )

    def remove_document(self, collection_id: int, document_id: int) -> None:
        with self._tx() as conn:
            ids = list(conn.scalars(select(chunks.c.id).where(chunks.c.document_id == document_id)))
            self.keywords.remove(conn, collection_id, ids)
            conn.execute(
                delete(chunks).where(chunks.c.collection_id == collection_id, chunks.c.document_id == document_id)
            )
            conn.execute(delete(documents).where(documents.c.id == document_id))

    def iter_live_chunks(self, collection_id: int, page: int = 512) -> Iterator[list[ChunkRow]]:
        """Every live chunk, a page at a time in a stable order (for reindex and checks)."""
        after = ""
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(chunks)
                    .where(chunks.c.collection_id == collection_id, chunks.c.state == LIVE, chunks.c.id > after)
                    .order_by(chunks.c.id)
                    .limit(page)
                ).all()
            if not rows:
                return
            yield [ChunkRow(r.id, r.seq, r.chunk_hash, r.text, dict(r.meta)) for r in rows]
            after = rows[-1].id

    def live_count(self, collection_id: int) -> int:
        with self._read() as conn:
            return int(
                conn.scalar(select(func.count()).where(chunks.c.collection_id == collection_id, chunks.c.state == LIVE))
                or 0
            )

    # Keyword index ---------------------------------------------------------------------

    def rebuild_keywords(self, collection_id: int, scheme: KeywordScheme, page: int = 1000) -> int:
        """Index every live chunk again under `scheme`; the caller holds the collection's lease.

        Until it finishes the collection has no keyword index (searches use meaning only),
        so a half-built index is never used. Returns the number of chunks indexed."""
        with self._tx() as conn:
            conn.execute(update(collections).where(collections.c.id == collection_id).values(keywords=None))
            self.keywords.drop_collection(conn, collection_id)
        done = 0
        for rows in self.iter_live_chunks(collection_id, page=page):
            with self._tx() as conn:
                keyword_rows = [_keyword_row(c.id, c.text, c.meta) for c in rows]
                self.keywords.add(conn, collection_id, keyword_rows, scheme.language)
            done += len(rows)
        with self._tx() as conn:
            conn.execute(update(collections).where(collections.c.id == collection_id).values(keywords=scheme.to_dict()))
        return done

    def search_keywords(
        self, collection_id: int, terms: list[str], k: int, *, every: bool = False
    ) -> list[tuple[str, float]]:
        with self._read() as conn:
            return self.keywords.search(conn, collection_id, terms, k, every=every)

    def unknown_terms(self, collection_id: int, terms: list[str]) -> list[str]:
        """The terms that no chunk of the collection holds."""
        with self._read() as conn:
            return [t for t in terms if not self.keywords.exists(conn, collection_id, t)]

    def keyword_ids(self, collection_id: int) -> set[str]:
        """Ids of the chunks in the collection's keyword index (for consistency checks)."""
        with self._read() as conn:
            return set(
                conn.scalars(text("SELECT chunk_id FROM chunk_keywords WHERE collection_id = :c"), {"c": collection_id})
            )

    def around(
        self, collection_id: int, chunk_ids: Sequence[str], before: int, after: int
    ) -> dict[str, list[ChunkRow]]:
        """For each chunk, the live chunks of its document from `before` before it to `after` after it, in order."""
        found: dict[str, list[ChunkRow]] = {}
        with self._read() as conn:
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
                found[anchor.id] = [ChunkRow(r.id, r.seq, r.chunk_hash, r.text, dict(r.meta)) for r in rows]
        return found
