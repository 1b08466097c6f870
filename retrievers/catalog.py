"""The collection registry: which collections exist, their Chroma index, embedder,
keyword scheme, owner and flags (the `collections` table, in the memory database).

What each collection holds (documents and chunks) is the ledger's (retrievers.ledger);
its write lock is the lease's (retrievers.lease). Transactions and their retry are
memory.db's `Database`, shared with memory/.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from assistant.errors import CollectionExistsError, UnknownCollectionError
from memory.db import Database
from retrievers.catalog_tables import chunks, collections, documents
from retrievers.embedder import EmbedderInfo, EmbedderSpec
from retrievers.keyword_index import KeywordIndex
from retrievers.keywords import KeywordScheme
from retrievers.ledger import LIVE

__all__ = ["Catalog", "CollectionInfo", "CollectionRow"]


def now() -> datetime:
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


class Catalog:
    """Reads and writes the collections table."""

    def __init__(self, db: Database, keywords: KeywordIndex) -> None:
        self.db = db
        self.keywords = keywords

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def get(self, name: str) -> CollectionRow | None:
        with self.db.read_rows() as conn:
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
        with self.db.read_rows() as conn:
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
        created = now()
        values = {
            "name": name,
            "chroma_name": chroma_name,
            "generation": 1,
            "embedder": _embedder_to_json(embedder),
            "local_only": local_only,
            "owner": owner,
            "created_by": created_by,
            "keywords": (keywords or KeywordScheme()).to_dict(),
            "created_at": created,
            "updated_at": created,
        }
        try:
            self.db.write_rows(lambda conn: conn.execute(insert(collections).values(**values)))
        except IntegrityError:
            raise CollectionExistsError(name) from None
        return self.require(name)

    def delete(self, collection_id: int) -> None:
        """The collection's row, documents, chunks and keyword index, in one transaction."""

        def work(conn: Connection) -> None:
            self.keywords.drop_collection(conn, collection_id)
            conn.execute(delete(chunks).where(chunks.c.collection_id == collection_id))
            conn.execute(delete(documents).where(documents.c.collection_id == collection_id))
            conn.execute(delete(collections).where(collections.c.id == collection_id))

        self.db.write_rows(work)

    def info(self, name: str) -> CollectionInfo:
        col = self.require(name)
        with self.db.read_rows() as conn:
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
        self._update(self.require(name).id, local_only=local_only)

    def set_building(self, collection_id: int, building: dict[str, Any] | None) -> None:
        self._update(collection_id, building=building)

    def switch(self, collection_id: int, chroma_name: str, embedder: EmbedderInfo, generation: int) -> None:
        """Point the collection at its rebuilt index, in one transaction."""
        self._update(
            collection_id,
            chroma_name=chroma_name,
            embedder=_embedder_to_json(embedder),
            generation=generation,
            building=None,
            updated_at=now(),
        )

    def _update(self, collection_id: int, **values: Any) -> None:
        self.db.write_rows(
            lambda conn: conn.execute(update(collections).where(collections.c.id == collection_id).values(**values))
        )
