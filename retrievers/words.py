"""Content words: the lexical view of a question used by condensing and evidence.

Lower-cased word tokens without stop words; identifiers such as X200, E17 or
work_mem stay whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["REFERRING_WORDS", "STOP_WORDS", "content_words", "entities", "leading_sentences", "sentences"]

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_ENTITY = re.compile(r"\b(?:[A-Z][A-Za-z]*\d[A-Za-z0-9-]*|[A-Z]{2,}[A-Za-z0-9-]*)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# Two or more "name: value" cells joined by "; " (retrievers.tables.row_line).
_TABLE_ROW = re.compile(r"^[^:;]{1,80}: [^;]*(?:; [^:;]{1,80}: [^;]*)+$")

REFERRING_WORDS = frozenset(
    "it its it's they them their theirs this that these those he she his her him one ones there".split()
)
STOP_WORDS = (
    frozenset(
        """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having here how i if in into is just me more most my no nor not now of off on once only
    or other our out over own same should so some such than the then to too under until up very was we
    were what when where which while who whom why will with would you your yours also please tell
    know want need get""".split()
    )
    | REFERRING_WORDS
)


def content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOP_WORDS]


def entities(text: str) -> list[str]:
    """Model numbers, codes and acronyms (X200, E17, P1, EUR) in order of appearance."""
    return list(dict.fromkeys(_ENTITY.findall(text)))


def sentences(text: str) -> list[str]:
    """Sentences, with lines re-joined: PDF text breaks lines in mid-sentence.

    A blank line, a list item or a short line without final punctuation (a heading)
    ends a unit of text; other line breaks are spaces. A table row written with its
    header ("Zone: 3; Rate: 4.50", retrievers.tables) is a unit of its own: quoted, it
    is that row, not the table run together.
    """
    units: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        is_heading = bool(stripped) and len(stripped) < 60 and stripped[-1] not in ".!?:;,"
        is_heading = is_heading or bool(_TABLE_ROW.match(stripped))
        if not stripped or _LIST_ITEM.match(line) or is_heading:
            if current:
                units.append(" ".join(current))
            current = []
            if is_heading:
                units.append(stripped)
                continue
        if stripped:
            current.append(_LIST_ITEM.sub("", stripped))
    if current:
        units.append(" ".join(current))
    return [s.strip() for unit in units for s in _SENTENCE_END.split(unit) if len(s.strip()) > 2]


def leading_sentences(text: str, room: int, count_tokens: Callable[[str], int]) -> list[str]:
    """The text's first sentences, as many as fit in `room` tokens together."""
    kept: list[str] = []
    for sentence in sentences(text):
        if count_tokens(" ".join([*kept, sentence])) > room:
            break
        kept.append(sentence)
    return kept
