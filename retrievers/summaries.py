"""Stored summaries of documents and collections (the `document_summaries` table).

A summary is kept with the file hash it was made from: while the document's hash is the
same it is served as is; once the document changed it is stale, never shown, and made
again on the next request. A collection's summary (document id NULL) is keyed the same
way by a digest of its documents' hashes (`collection_key`). Rows go with their document
(retrievers.ledger removes them as the document is removed, changed or moved) and with
their collection (foreign keys, ON DELETE CASCADE). SQL only: what a summary holds is
JSON made by the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from memory.db import Database
from retrievers.catalog_tables import document_summaries, documents

__all__ = ["StoredDocumentSummary", "SummaryStore", "collection_key", "remove_document_summaries"]


@dataclass(frozen=True)
class StoredDocumentSummary:
    collection_id: int
    document_id: int | None  # None: the collection's summary
    file_hash: str  # what it was made from (see the module's docstring)
    focus: str  # "" for none
    summary: dict[str, Any]
    models: list[str]
    created_at: datetime


def collection_key(hashes: Iterable[tuple[str, str]]) -> str:
    """The digest a collection's summary is stored under: its documents' (source, file hash) pairs."""
    digest = hashlib.sha256()
    for source, file_hash in sorted(hashes):
        digest.update(f"{source}\0{file_hash}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def remove_document_summaries(conn: Connection, document_id: int) -> None:
    """Within a ledger transaction: the document's summaries, every focus."""
    conn.execute(delete(document_summaries).where(document_summaries.c.document_id == document_id))


def _where(collection_id: int, document_id: int | None, focus: str) -> Any:
    document = (
        document_summaries.c.document_id.is_(None)
        if document_id is None
        else document_summaries.c.document_id == document_id
    )
    return (document_summaries.c.collection_id == collection_id) & document & (document_summaries.c.focus == focus)


def _stored(row: Any) -> StoredDocumentSummary:
    created = row.created_at
    if created.tzinfo is None:  # SQLite gives naive datetimes back
        created = created.replace(tzinfo=UTC)
    return StoredDocumentSummary(
        row.collection_id, row.document_id, row.file_hash, row.focus, dict(row.summary), list(row.models), created
    )


class SummaryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(
        self, collection_id: int, document_id: int | None, focus: str, file_hash: str
    ) -> StoredDocumentSummary | None:
        """The summary made from exactly this `file_hash` (or collection key); None when there is
        none, or only a stale one."""
        with self.db.read_rows() as conn:
            row = conn.execute(
                select(document_summaries)
                .where(_where(collection_id, document_id, focus))
                .order_by(document_summaries.c.id.desc())
                .limit(1)
            ).first()
        if row is None or row.file_hash != file_hash:
            return None
        return _stored(row)

    def put(
        self,
        collection_id: int,
        document_id: int | None,
        focus: str,
        file_hash: str,
        summary: dict[str, Any],
        models: list[str],
    ) -> StoredDocumentSummary:
        """Store a summary in place of any earlier one for the same document (or collection) and focus."""
        created = datetime.now(UTC)

        def work(conn: Connection) -> None:
            if document_id is not None:  # the document may have been removed while it was summarised
                exists = conn.scalar(select(documents.c.id).where(documents.c.id == document_id))
                if exists is None:
                    return
            conn.execute(delete(document_summaries).where(_where(collection_id, document_id, focus)))
            conn.execute(
                insert(document_summaries).values(
                    collection_id=collection_id,
                    document_id=document_id,
                    file_hash=file_hash,
                    focus=focus,
                    summary=summary,
                    models=models,
                    created_at=created,
                )
            )

        self.db.write_rows(work)
        return StoredDocumentSummary(collection_id, document_id, file_hash, focus, summary, models, created)

    def stale(self, collection_id: int) -> list[tuple[int, str]]:
        """(document id, focus) of the collection's document summaries made from another version
        of their document than the one indexed now."""
        with self.db.read_rows() as conn:
            rows = conn.execute(
                select(document_summaries.c.document_id, document_summaries.c.focus)
                .join(documents, documents.c.id == document_summaries.c.document_id)
                .where(
                    document_summaries.c.collection_id == collection_id,
                    document_summaries.c.file_hash != documents.c.file_hash,
                )
            ).all()
        return [(int(r.document_id), str(r.focus)) for r in rows]

    def remove(self, collection_id: int, document_id: int | None = None) -> int:
        """The summaries of one document (every focus), or with no document those of the collection
        itself; returns how many rows went."""

        def work(conn: Connection) -> int:
            where = document_summaries.c.collection_id == collection_id
            where &= (
                document_summaries.c.document_id.is_(None)
                if document_id is None
                else document_summaries.c.document_id == document_id
            )
            return int(conn.execute(delete(document_summaries).where(where)).rowcount or 0)

        return self.db.write_rows(work)

    def count(self, collection_id: int) -> int:
        """Rows stored for the collection (documents' and its own)."""
        with self.db.read_rows() as conn:
            return len(
                conn.execute(
                    select(document_summaries.c.id).where(document_summaries.c.collection_id == collection_id)
                ).all()
            )
