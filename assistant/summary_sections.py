"""A document's stored chunks as the sections of its summary, each cited as its answers
cite it ("deck.pptx › slide 2 › Revenue", "prices.xlsx › Europe › rows 2–40",
"scan.pdf › pages 3–5"). See assistant.summaries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrievers.sections import HEADING_SEPARATOR

if TYPE_CHECKING:
    from chains.document_summary import SummarySection
    from retrievers.ledger import ChunkRow

__all__ = ["chunk_sections"]

# Consecutive pages, rows or lines are one section up to about this many characters
# (some 600 tokens): a section per page of a long PDF would cost a model call per page.
_RUN_CHARS = 2400
_NUMBERED = re.compile(r"^(page|row|line|slide|message) (\d+)$")


def _section_key(meta: dict[str, Any]) -> str:
    """What a chunk's section is called: its heading path, else the top part of its location."""
    heading = str(meta.get("heading") or "").strip()
    if heading:
        return heading
    return str(meta.get("location") or "").split(HEADING_SEPARATOR)[0].strip()


def _without_overlap(before: str, text: str) -> str:
    """`text` less what it repeats of the end of `before` (chunks overlap by a few tokens)."""
    for size in range(min(len(before), len(text), 600), 11, -1):
        if before.endswith(text[:size]):
            return text[size:].lstrip()
    return text


@dataclass
class _Group:
    keys: list[str]
    texts: list[str]
    locations: list[str]

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.texts)

    def citation(self, source: str) -> str:
        """As answers cite it: the chunks' location ("slide 2 › Revenue", "Leave"), a run of
        them ("pages 3–5", "Europe › rows 2–40"), else the section's heading."""
        first, last = self.locations[0], self.locations[-1]
        if first and first == last:
            name = first
        else:
            name = _run(first, last) or _run(self.keys[0], self.keys[-1]) or self.keys[0]
            if not name and self.keys[0] != self.keys[-1]:
                name = f"{self.keys[0]} – {self.keys[-1]}"
        return f"{source}{HEADING_SEPARATOR}{name}" if name else source


def _run(first: str, last: str) -> str:
    """ "pages 3–5" from "page 3" and "page 5"; "Europe › rows 2–40" from "Europe › row 2" and
    "Europe › row 40"; "" when the two are not a run of one kind under one parent."""
    (head_a, _, tail_a), (head_b, _, tail_b) = first.rpartition(HEADING_SEPARATOR), last.rpartition(HEADING_SEPARATOR)
    a, b = _NUMBERED.match(tail_a), _NUMBERED.match(tail_b)
    if not (a and b and head_a == head_b and a.group(1) == b.group(1)):
        return ""
    unit = a.group(1) if a.group(2) == b.group(2) else f"{a.group(1)}s"
    span = a.group(2) if a.group(2) == b.group(2) else f"{a.group(2)}–{b.group(2)}"
    return HEADING_SEPARATOR.join(part for part in (head_a, f"{unit} {span}") if part)


def chunk_sections(source: str, chunks: list[ChunkRow]) -> list[SummarySection]:
    """A document's chunks (in document order) as the sections of its summary: the chunks of one
    heading (or location) together, runs of numbered locations (pages, rows, lines) joined up to
    about `_RUN_CHARS`; each cited "source › heading" ("policy.md › Leave", "scan.pdf › pages 3–5")."""
    from chains.document_summary import SummarySection

    groups: list[_Group] = []
    for chunk in chunks:
        key = _section_key(chunk.meta)
        last = groups[-1] if groups else None
        location = str(chunk.meta.get("location") or "")
        if last is not None and last.keys[-1] == key:
            last.texts.append(_without_overlap(last.texts[-1], chunk.text))
            last.locations.append(location)
            continue
        numbered = _NUMBERED.match(key)
        previous = _NUMBERED.match(last.keys[-1]) if last is not None else None
        if (
            last is not None
            and numbered
            and previous
            and numbered.group(1) == previous.group(1)
            and last.size + len(chunk.text) <= _RUN_CHARS
        ):
            last.keys.append(key)
            last.texts.append(chunk.text)
            last.locations.append(location)
            continue
        groups.append(_Group([key], [chunk.text], [location]))
    sections: list[SummarySection] = []
    for group in groups:
        text = "\n".join(t for t in group.texts if t.strip()).strip()
        if text:
            sections.append(SummarySection(len(sections), group.citation(source), text))
    return sections
