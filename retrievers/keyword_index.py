"""The keyword index of a collection's live chunks, in the SQL database beside the catalog.

An FTS5 table on SQLite (ranked by FTS5's own `bm25()`), a `tsvector` column with a
GIN index on PostgreSQL (ranked by idf × `ts_rank`, PostgreSQL's length-normalised
term frequency); both index the terms of retrievers.keywords, not their own parse of
the text. It scales with the database and every replica sees the same one.

`KeywordIndex` is the only code that reads or writes `chunk_keywords` (and the
collection's keyword scheme). Its `add` and `remove` take the caller's connection:
the ledger (retrievers.ledger) writes them in the very transactions that make chunks
live or take them away, so the index holds exactly the live chunks, whatever instant
a process is killed at.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, select, text, update

from memory.db import Database
from retrievers.catalog_tables import collections
from retrievers.keywords import KeywordScheme, terms_of

__all__ = ["KeywordBackend", "KeywordIndex", "KeywordRow", "PostgresKeywords", "SqliteKeywords", "keyword_backend"]

_MAX_POSITIONS = 255  # PostgreSQL keeps at most 256 positions per lexeme
# A term in a chunk's heading path counts this many times one in its text: a page or
# section named after what is asked is usually where the answer is.
TITLE_WEIGHT = 3.0
_PG_WEIGHTS = f"{{{round(1 / TITLE_WEIGHT, 4)}, 0, 0, 1.0}}"  # ts_rank's {D, C, B, A}: body D, title A


def keyword_rowid(collection_id: int, chunk_id: str) -> int:
    """A 63-bit row id for a chunk's keyword row (FTS5 tables are keyed by integer)."""
    digest = hashlib.sha256(f"{collection_id}\0{chunk_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


@dataclass(frozen=True)
class KeywordRow:
    chunk_id: str
    title: str
    text: str


class KeywordBackend(Protocol):
    """One database's keyword index. Writes take the caller's connection (its transaction)."""

    def add(self, conn: Connection, collection_id: int, rows: Sequence[KeywordRow], language: str) -> None: ...

    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[str]) -> None: ...

    def drop_collection(self, conn: Connection, collection_id: int) -> None: ...

    def exists(self, conn: Connection, collection_id: int, term: str) -> bool: ...

    def search(
        self, conn: Connection, collection_id: int, terms: Sequence[str], k: int, *, every: bool = False
    ) -> list[tuple[str, float]]:
        """(chunk id, score) of the best `k` chunks holding any (`every`: all) of the terms, best first."""
        ...


def _chunked(values: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class _KeywordTable:
    """What both backends' `chunk_keywords` tables share; `_MATCH` is the engine's "holds
    the term :q" and `_query` writes one term as that condition's parameter."""

    _MATCH = ""

    @staticmethod
    def _query(term: str) -> str:
        raise NotImplementedError

    def drop_collection(self, conn: Connection, collection_id: int) -> None:
        conn.execute(text("DELETE FROM chunk_keywords WHERE collection_id = :c"), {"c": collection_id})

    def exists(self, conn: Connection, collection_id: int, term: str) -> bool:
        found = conn.execute(
            text(f"SELECT 1 FROM chunk_keywords WHERE {self._MATCH} AND collection_id = :c LIMIT 1"),
            {"q": self._query(term), "c": collection_id},
        ).first()
        return found is not None


class SqliteKeywords(_KeywordTable):
    """FTS5 table `chunk_keywords(title, terms, collection_id UNINDEXED, chunk_id UNINDEXED)`."""

    _MATCH = "chunk_keywords MATCH :q"
    _query = staticmethod(_fts_phrase)

    def add(self, conn: Connection, collection_id: int, rows: Sequence[KeywordRow], language: str) -> None:
        if not rows:
            return
        self.remove(conn, collection_id, [r.chunk_id for r in rows])  # a rebuilt row replaces the old one
        conn.execute(
            text(
                "INSERT INTO chunk_keywords(rowid, title, terms, collection_id, chunk_id) VALUES (:r, :h, :t, :c, :i)"
            ),
            [
                {
                    "r": keyword_rowid(collection_id, r.chunk_id),
                    "h": " ".join(terms_of(r.title, language)),
                    "t": " ".join(terms_of(r.text, language)),
                    "c": collection_id,
                    "i": r.chunk_id,
                }
                for r in rows
            ],
        )

    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[str]) -> None:
        for part in _chunked([keyword_rowid(collection_id, i) for i in chunk_ids]):
            conn.execute(text(f"DELETE FROM chunk_keywords WHERE rowid IN ({','.join(str(r) for r in part)})"))

    def search(
        self, conn: Connection, collection_id: int, terms: Sequence[str], k: int, *, every: bool = False
    ) -> list[tuple[str, float]]:
        if not terms:
            return []
        rows = conn.execute(
            text(
                f"SELECT chunk_id, bm25(chunk_keywords, {TITLE_WEIGHT}, 1.0) AS rank FROM chunk_keywords "
                "WHERE chunk_keywords MATCH :q AND collection_id = :c ORDER BY rank LIMIT :k"
            ),
            {
                "q": (" AND " if every else " OR ").join(_fts_phrase(t) for t in terms),
                "c": collection_id,
                "k": k,
            },
        ).all()
        return [(str(r.chunk_id), -float(r.rank)) for r in rows]  # bm25() is lower-is-better


def _lexeme(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def _tsvector(title: Sequence[str], body: Sequence[str]) -> str:
    """A tsvector literal: title terms weighted A, body terms D (ts_rank's weights tell them apart)."""
    positions: dict[str, list[str]] = {}
    for position, (term, weight) in enumerate([*((t, "A") for t in title), *((t, "") for t in body)], start=1):
        found = positions.setdefault(term, [])
        if len(found) < _MAX_POSITIONS:
            found.append(f"{min(position, 16383)}{weight}")
    return " ".join(f"{_lexeme(t)}:{','.join(p)}" for t, p in positions.items())


class PostgresKeywords(_KeywordTable):
    """Table `chunk_keywords(collection_id, chunk_id, terms tsvector)` with a GIN index on `terms`."""

    _MATCH = "terms @@ CAST(:q AS tsquery)"
    _query = staticmethod(_lexeme)

    def add(self, conn: Connection, collection_id: int, rows: Sequence[KeywordRow], language: str) -> None:
        if not rows:
            return
        conn.execute(
            text(
                "INSERT INTO chunk_keywords(collection_id, chunk_id, terms) "
                "VALUES (:c, :i, CAST(:t AS tsvector)) "
                "ON CONFLICT (collection_id, chunk_id) DO UPDATE SET terms = EXCLUDED.terms"
            ),
            [
                {
                    "c": collection_id,
                    "i": r.chunk_id,
                    "t": _tsvector(terms_of(r.title, language), terms_of(r.text, language)),
                }
                for r in rows
            ],
        )

    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[str]) -> None:
        for part in _chunked(list(chunk_ids)):
            conn.execute(
                text("DELETE FROM chunk_keywords WHERE collection_id = :c AND chunk_id = ANY(:ids)"),
                {"c": collection_id, "ids": list(part)},
            )

    def search(
        self, conn: Connection, collection_id: int, terms: Sequence[str], k: int, *, every: bool = False
    ) -> list[tuple[str, float]]:
        if not terms:
            return []
        joiner = " & " if every else " | "
        params: dict[str, Any] = {"c": collection_id, "k": k, "q": joiner.join(_lexeme(t) for t in terms)}
        counts = ", ".join(f"count(*) FILTER (WHERE terms @@ CAST(:t{n} AS tsquery))" for n in range(len(terms)))
        params.update({f"t{n}": _lexeme(t) for n, t in enumerate(terms)})
        total, *df = conn.execute(
            text(
                f"SELECT (SELECT count(*) FROM chunk_keywords WHERE collection_id = :c), {counts} "
                "FROM chunk_keywords WHERE collection_id = :c AND terms @@ CAST(:q AS tsquery)"
            ),
            params,
        ).one()
        # BM25's idf; ts_rank (normalisation 1: divided by 1 + log length) supplies the term frequency.
        weights = [math.log(1 + (total - d + 0.5) / (d + 0.5)) for d in df]
        score = " + ".join(
            f"{w:.6f} * ts_rank('{_PG_WEIGHTS}', terms, CAST(:t{n} AS tsquery), 1)"
            for n, w in enumerate(weights)
            if df[n]
        )
        if not score:
            return []
        rows = conn.execute(
            text(
                f"SELECT chunk_id, {score} AS score FROM chunk_keywords "
                "WHERE collection_id = :c AND terms @@ CAST(:q AS tsquery) ORDER BY score DESC LIMIT :k"
            ),
            params,
        ).all()
        return [(str(r.chunk_id), float(r.score)) for r in rows]


def keyword_backend(dialect: str) -> KeywordBackend:
    return PostgresKeywords() if dialect == "postgresql" else SqliteKeywords()


class KeywordIndex:
    """One collection's keyword index: written in the ledger's transactions, searched by retrievers.search."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.backend = keyword_backend(db.engine.dialect.name)

    # Writes inside the caller's transaction ---------------------------------------------

    def add(self, conn: Connection, collection_id: int, rows: Sequence[KeywordRow], language: str) -> None:
        self.backend.add(conn, collection_id, rows, language)

    def remove(self, conn: Connection, collection_id: int, chunk_ids: Sequence[str]) -> None:
        self.backend.remove(conn, collection_id, chunk_ids)

    def drop_collection(self, conn: Connection, collection_id: int) -> None:
        self.backend.drop_collection(conn, collection_id)

    def scheme(self, conn: Connection, collection_id: int) -> KeywordScheme | None:
        """The scheme the collection's index was built under (None: not built)."""
        return KeywordScheme.from_dict(
            conn.scalar(select(collections.c.keywords).where(collections.c.id == collection_id))
        )

    # Whole operations ----------------------------------------------------------------------

    def rebuild(self, collection_id: int, scheme: KeywordScheme, pages: Iterable[Sequence[KeywordRow]]) -> int:
        """Index every live chunk (`pages` of them) again under `scheme`; the caller holds the
        collection's lease.

        Until it finishes the collection has no keyword index (searches use meaning only),
        so a half-built index is never used. Returns the number of chunks indexed."""

        def clear(conn: Connection) -> None:
            conn.execute(update(collections).where(collections.c.id == collection_id).values(keywords=None))
            self.backend.drop_collection(conn, collection_id)

        self.db.write_rows(clear)
        done = 0
        for rows in pages:

            def add(conn: Connection, rows: Sequence[KeywordRow] = rows) -> None:
                self.backend.add(conn, collection_id, rows, scheme.language)

            self.db.write_rows(add)
            done += len(rows)

        def built(conn: Connection) -> None:
            conn.execute(update(collections).where(collections.c.id == collection_id).values(keywords=scheme.to_dict()))

        self.db.write_rows(built)
        return done

    def search(self, collection_id: int, terms: list[str], k: int, *, every: bool = False) -> list[tuple[str, float]]:
        with self.db.read_rows() as conn:
            return self.backend.search(conn, collection_id, terms, k, every=every)

    def unknown_terms(self, collection_id: int, terms: list[str]) -> list[str]:
        """The terms that no chunk of the collection holds."""
        with self.db.read_rows() as conn:
            return [t for t in terms if not self.backend.exists(conn, collection_id, t)]

    def ids(self, collection_id: int) -> set[str]:
        """Ids of the chunks in the collection's keyword index (for consistency checks)."""
        with self.db.read_rows() as conn:
            return set(
                conn.scalars(text("SELECT chunk_id FROM chunk_keywords WHERE collection_id = :c"), {"c": collection_id})
            )
