"""The keyword side of hybrid retrieval: a BM25-family index of a collection's live chunks.

It lives in the SQL database beside the catalog, so it scales with the database
and every replica sees the same one: an FTS5 table on SQLite (ranked by FTS5's own
`bm25()`), a `tsvector` column with a GIN index on PostgreSQL (ranked by idf ×
`ts_rank`, PostgreSQL's length-normalised term frequency). The catalog writes it in
the very transactions that make chunks live or take them away, so it always holds
exactly the live chunks, whatever instant a process is killed at.

Both engines index the terms made here, not their own parse of the text: their
parsers split `work_mem` or `pg_stat_activity.query` into pieces, or take a dotted
name for a host name. An identifier is indexed whole, as written (lower-cased), and
also as its parts, so `work_mem`, `40P01`, `--jobs` and `pg_dump` are found exactly
while "work memory" still matches. Plain words are stemmed (Snowball) in the
collection's language.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Connection, text

from retrievers.words import STOP_WORDS

__all__ = [
    "KEYWORD_VERSION",
    "KeywordBackend",
    "KeywordScheme",
    "PostgresKeywords",
    "SqliteKeywords",
    "document_terms",
    "is_identifier",
    "keyword_backend",
    "query_terms",
]

# Bump when the terms made from a text change: collections indexed with an older
# version are searched by meaning only until their next ingest or reindex rebuilds them.
KEYWORD_VERSION = 1

# An option (-j, --jobs) or a word, with dotted, dashed, colon-joined parts kept together.
_TOKEN = re.compile(r"(?<![\w-])(?:--?(?=[^\W\d_]))?\w+(?:[.:-]\w+)*")
_PART = re.compile(r"[^\W_]+")
_SEGMENT = re.compile(r"[.:]")
_HYPHENATED = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")
_MAX_TERM = 100
_MAX_POSITIONS = 255  # PostgreSQL keeps at most 256 positions per lexeme
# A term in a chunk's heading path counts this many times one in its text: a page or
# section named after what is asked is usually where the answer is.
TITLE_WEIGHT = 3.0
_PG_WEIGHTS = f"{{{round(1 / TITLE_WEIGHT, 4)}, 0, 0, 1.0}}"  # ts_rank's {D, C, B, A}: body D, title A

# Words of questions that say nothing about the topic.
_QUERY_STOP = STOP_WORDS | frozenset(
    "use used using way ways mean means meaning show shows explain describe happen happens "
    "give gives set sets default value values work works".split()
)


@dataclass(frozen=True)
class KeywordScheme:
    """How a collection's text was turned into terms: the query must be turned the same way."""

    version: int = KEYWORD_VERSION
    language: str = "english"  # a Snowball language, or "none" for no stemming

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "language": self.language}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> KeywordScheme | None:
        if not value:
            return None
        return cls(int(value.get("version", 0)), str(value.get("language", "none")))

    @property
    def current(self) -> bool:
        return self.version == KEYWORD_VERSION


@lru_cache(maxsize=16)
def _stemmer(language: str) -> Any:
    if language == "none":
        return None
    import snowballstemmer

    return snowballstemmer.stemmer(language)


def check_language(language: str) -> str:
    """The language if Snowball has it (or "none"); otherwise a ValueError listing those it has."""
    if language == "none":
        return language
    import snowballstemmer

    known = sorted(snowballstemmer.algorithms())
    if language not in known:
        raise ValueError(f"{language!r} is not a Snowball language; use one of {', '.join(known)} or 'none'")
    return language


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def _terms_of_token(token: str, language: str) -> tuple[str, ...]:
    parts = _PART.findall(token)
    stemmer = _stemmer(language)

    def stem(word: str) -> str:
        return stemmer.stemWord(word) if stemmer is not None and not word.isdigit() else word

    if token.isalpha() or token.isdigit():
        return (stem(token),)
    # An identifier: whole as written, its dotted segments (pg_stat_activity of
    # pg_stat_activity.query), then its parts as words.
    whole = (token,) if len(token) <= _MAX_TERM else ()
    segments = tuple(s for s in _SEGMENT.split(token) if s and s != token and not (s.isalpha() or s.isdigit()))
    return whole + segments + tuple(stem(p) for p in parts if p != token)


def terms_of(value: str, language: str) -> list[str]:
    found: list[str] = []
    for match in _TOKEN.finditer(_fold(value)):
        found.extend(_terms_of_token(match.group(0), language))
    return found


def document_terms(title: str, body: str, language: str) -> list[str]:
    """The terms a chunk is indexed under: those of its heading path and its text, in order."""
    return terms_of(f"{title}\n{body}", language)


def is_identifier(term: str) -> bool:
    """A code, option or dotted/underscored name rather than a word (it was indexed as written).

    Hyphenated words ("write-ahead", "monthly-plan") are words: questions coin them freely."""
    return not term.isalpha() and not _HYPHENATED.fullmatch(term)


def query_terms(question: str, language: str) -> list[str]:
    """The distinct terms of a question that carry meaning (question words left out)."""
    kept: list[str] = []
    for match in _TOKEN.finditer(_fold(question)):
        token = match.group(0)
        if token in _QUERY_STOP:
            continue
        terms = _terms_of_token(token, language)
        # An identifier's parts stay, whatever they are: "work" counts in work_mem.
        kept.extend(terms if len(terms) > 1 else (t for t in terms if t not in _QUERY_STOP))
    return list(dict.fromkeys(kept))


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
    """What both backends' `chunk_keywords` tables share."""

    def drop_collection(self, conn: Connection, collection_id: int) -> None:
        conn.execute(text("DELETE FROM chunk_keywords WHERE collection_id = :c"), {"c": collection_id})


class SqliteKeywords(_KeywordTable):
    """FTS5 table `chunk_keywords(title, terms, collection_id UNINDEXED, chunk_id UNINDEXED)`."""

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

    def exists(self, conn: Connection, collection_id: int, term: str) -> bool:
        found = conn.execute(
            text("SELECT 1 FROM chunk_keywords WHERE chunk_keywords MATCH :q AND collection_id = :c LIMIT 1"),
            {"q": _fts_phrase(term), "c": collection_id},
        ).first()
        return found is not None

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

    def exists(self, conn: Connection, collection_id: int, term: str) -> bool:
        found = conn.execute(
            text("SELECT 1 FROM chunk_keywords WHERE collection_id = :c AND terms @@ CAST(:q AS tsquery) LIMIT 1"),
            {"q": _lexeme(term), "c": collection_id},
        ).first()
        return found is not None

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
