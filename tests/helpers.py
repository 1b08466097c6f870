"""Reading an index back, for tests: what SQL and Chroma hold, row by row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from assistant import Assistant
from retrievers.catalog_tables import chunks, collections, documents


def chroma_rows(bot: Assistant, name: str) -> dict[str, tuple[str, str, str]]:
    """Chunk id -> (source, location, text) as Chroma holds them."""
    col = bot.index.catalog.require(name)
    got = bot.index.store.get(col.chroma_name).get(include=["metadatas", "documents"])
    return {
        i: (str(m["source"]), str(m["location"]), str(d))
        for i, m, d in zip(got["ids"], got["metadatas"] or [], got["documents"] or [], strict=True)
    }


def sql_rows(bot: Assistant, name: str) -> dict[str, Any]:
    """Everything the catalog holds about one collection, for exact comparisons."""
    col = bot.index.catalog.require(name)
    with bot.index.catalog.engine.connect() as conn:
        return {
            "collection": tuple(conn.execute(select(collections).where(collections.c.id == col.id)).one()),
            "documents": sorted(
                tuple(r) for r in conn.execute(select(documents).where(documents.c.collection_id == col.id))
            ),
            "chunks": sorted(
                (r.id, r.state, r.seq, r.text, repr(sorted(r.meta.items())))
                for r in conn.execute(select(chunks).where(chunks.c.collection_id == col.id))
            ),
        }


def index_content(bot: Assistant, name: str) -> set[tuple[str, str, str, str]]:
    """(chunk id, source, location, text) in Chroma, after checking SQL agrees id by id."""
    check = bot.index.check(name)
    assert check.consistent, check
    return {(i, *row) for i, row in chroma_rows(bot, name).items()}
