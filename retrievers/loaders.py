"""Parse one document's bytes into sections: text plus where it sits.

PARSERS maps each kind of retrievers.detect to its parser: plain text, Markdown,
reStructuredText, HTML, PDF, DOCX, CSV, JSON and JSON Lines here and in the modules
named below; XLSX (retrievers.sheets), PPTX (retrievers.slides), EML and MBOX
(retrievers.mail, whose attachments are parsed through PARSERS again), EPUB and ODT
(retrievers.books), and images read by OCR (retrievers.images).

Each section is a LangChain `Document` whose metadata holds `location`, what a
citation shows ("Maintenance › Service intervals", "page 2", "row 14", "line 12",
"Rates › row 14", "slide 4 › Pricing", "message 2 › attachment report.pdf › page 1"),
and, where known, `heading`, `page`, `row`, `sheet`, `slide`, `attachment` or `line_start`. Parsers work on bytes
already read (and hashed) by the ingestor, so the text indexed is exactly the
content whose hash is recorded. A document that cannot be parsed raises
InputFileError naming the file and the reason; a part of it left out (a JSON Lines
line that is not JSON, a record without text) is named in `notes`, never dropped
silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from assistant.settings import DocumentSettings
from retrievers.books import parse_epub, parse_odt
from retrievers.html import parse_html
from retrievers.mail import parse_eml, parse_mbox
from retrievers.office import parse_docx
from retrievers.pdf import parse_pdf
from retrievers.records import parse_csv, parse_json, parse_jsonl
from retrievers.sections import HeadingSections, decode, section
from retrievers.sheets import parse_xlsx
from retrievers.slides import parse_pptx

__all__ = ["PARSERS", "parse"]


def parse_text(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    return [section(decode(path, data), "", line_start=1)]


_MD_HEADING = re.compile(r"(#{1,6})\s+(\S.*)")  # its closing #s are cut in _md_title
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    out = HeadingSections()
    in_fence = False
    for number, line in enumerate(decode(path, data).splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.fullmatch(line)
        if match:
            # The section's text starts with its heading line, so it starts on the heading's line.
            out.heading(len(match.group(1)), _md_title(match.group(2)), number)
        else:
            out.lines.append(line)
    return out.done()


def _md_title(rest: str) -> str:
    # Done without a regular expression: `(.+?)\s*#*\s*$` backtracks for minutes on a
    # heading padded with thousands of spaces.
    title = rest.rstrip().rstrip("#").rstrip()
    return title or rest.strip()[:1]


_RST_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def parse_rst(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    """reStructuredText titles: a line underlined (and maybe overlined) by one repeated
    punctuation character; levels follow the order in which styles first appear."""
    lines = decode(path, data).splitlines()
    out = HeadingSections()
    styles: list[tuple[str, bool]] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        over = bool(_RST_ADORNMENT.match(line)) and index + 2 < len(lines)
        title_at = index + 1 if over else index
        title = lines[title_at].strip() if title_at < len(lines) else ""
        under = lines[title_at + 1] if title_at + 1 < len(lines) else ""
        match = _RST_ADORNMENT.match(under)
        if title and not _RST_ADORNMENT.match(lines[title_at]) and match and len(under.rstrip()) >= len(title):
            style = (match.group(1), over)
            if style not in styles:
                styles.append(style)
            # Its text is the title, then the lines after the underline: numbered from there.
            out.heading(styles.index(style) + 1, title, title_at + 2)
            index = title_at + 2
            continue
        if not _RST_ADORNMENT.match(line):
            out.lines.append(line)
        index += 1
    return out.done()


def parse_image(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    """PNG, JPEG and TIFF files through OCR (imported when one is read: it loads Pillow)."""
    from retrievers.images import parse_image as read_image

    return read_image(path, data, options, notes)


def parse_email(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    return parse_eml(path, data, options, notes, PARSERS)  # attachments: by their own kind's parser


def parse_mailbox(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    return parse_mbox(path, data, options, notes, PARSERS)


PARSERS: dict[str, Callable[[Path, bytes, DocumentSettings, list[str]], list[Document]]] = {
    "txt": parse_text,
    "md": parse_markdown,
    "rst": parse_rst,
    "html": parse_html,
    "pdf": parse_pdf,
    "docx": parse_docx,
    "csv": parse_csv,
    "json": parse_json,
    "jsonl": parse_jsonl,
    "xlsx": parse_xlsx,
    "pptx": parse_pptx,
    "eml": parse_email,
    "mbox": parse_mailbox,
    "epub": parse_epub,
    "odt": parse_odt,
    "image": parse_image,
}


def parse(
    kind: str, path: Path, data: bytes, options: DocumentSettings, notes: list[str] | None = None
) -> list[Document]:
    """Sections of one document of a known kind (see retrievers.detect); parts left out
    are described in `notes`."""
    return PARSERS[kind](path, data, options, notes if notes is not None else [])
