"""What every parser shares: decoding text, one section, and sections under a heading path.

A section is a LangChain `Document` whose metadata holds `location`, what a citation
shows ("Maintenance › Service intervals", "page 2", "row 14"), and, where known,
`heading`, `page`, `row` or `line_start`.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError
from retrievers.detect import text_encoding

__all__ = ["HEADING_SEPARATOR", "HeadingSections", "decode", "section", "without_document_title"]

HEADING_SEPARATOR = " › "


def decode(path: Path, data: bytes) -> str:
    codec = text_encoding(data)
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if codec == "utf-8-sig" else codec.upper().removesuffix("-LE").removesuffix("-BE")
        raise InputFileError(
            str(path), f"is not valid {name} (byte {exc.start}); re-save it as UTF-8 to index it"
        ) from None


def section(text: str, location: str, **extra: object) -> Document:
    return Document(page_content=text, metadata={"location": location, **extra})


class HeadingSections:
    """Accumulates lines under a heading path; one section per heading."""

    def __init__(self) -> None:
        self.sections: list[Document] = []
        self.levels: list[tuple[int, str]] = []  # the open headings, outermost first
        self.lines: list[str] = []
        self.start = 1
        self.bare: set[int] = set()  # sections that hold nothing but their heading

    @property
    def headings(self) -> list[str]:
        return [title for _, title in self.levels]

    def heading(self, level: int, title: str, line: int) -> None:
        self.flush(line)
        # Levels may skip (a page whose first heading is an h2): a heading closes every open
        # heading of its level or deeper, whatever the levels in between.
        while self.levels and self.levels[-1][0] >= level:
            self.levels.pop()
        self.levels.append((level, title))
        # The heading words stay in the text: they are often what a question names.
        self.lines.append(title)

    def flush(self, next_start: int = 0) -> None:
        body = "\n".join(self.lines).strip()
        if body:
            heading = HEADING_SEPARATOR.join(self.headings)
            if self.levels and body == self.levels[-1][1]:
                self.bare.add(len(self.sections))
            self.sections.append(section(body, heading, heading=heading, line_start=self.start))
        self.lines, self.start = [], next_start

    def done(self) -> list[Document]:
        self.flush()
        # A heading with nothing under it (an index entry, a heading right above its
        # subheading) says nothing its subsections' titles don't: as a chunk of its own it
        # only crowds out the text that answers.
        sections = [s for i, s in enumerate(self.sections) if i not in self.bare] or self.sections
        return without_document_title(sections)


def without_document_title(sections: list[Document]) -> list[Document]:
    """Drop the heading every section shares (the document's title) from the location.

    "Owner's Manual › Maintenance › Service interval" cites as "Maintenance › Service
    interval"; the full path stays in `heading`, which titles the embedded chunk.
    """
    roots = {str(s.metadata.get("heading", "")).split(HEADING_SEPARATOR)[0] for s in sections}
    if len(roots) != 1 or not next(iter(roots)):
        return sections
    root = next(iter(roots))
    for each in sections:
        rest = str(each.metadata["heading"])[len(root) :].removeprefix(HEADING_SEPARATOR)
        each.metadata["location"] = rest or root
    return sections
