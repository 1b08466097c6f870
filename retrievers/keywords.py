"""The keyword side of hybrid retrieval: the terms a text is indexed and searched under.

The SQL engines index the terms made here (retrievers.keyword_index), not their own
parse of the text: their parsers split `work_mem` or `pg_stat_activity.query` into
pieces, or take a dotted name for a host name. An identifier is indexed whole, as
written (lower-cased), and also as its parts, so `work_mem`, `40P01`, `--jobs` and
`pg_dump` are found exactly while "work memory" still matches. Plain words are
stemmed (Snowball) in the collection's language. Pure functions; imports no database.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from retrievers.words import STOP_WORDS

__all__ = [
    "KEYWORD_VERSION",
    "KeywordScheme",
    "check_language",
    "document_terms",
    "is_identifier",
    "query_terms",
    "terms_of",
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
