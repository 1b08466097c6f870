"""Read one file into sections: text plus where it sits (heading path, page, lines).

Each section is a LangChain `Document` whose metadata holds `location` (what a
citation shows: "Maintenance › Service intervals", "page 2", "lines 1-20") and, where
known, `heading` and `page`. A file that cannot be read raises InputFileError naming
the file and the reason; the caller decides whether the run goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError

__all__ = ["SUPPORTED_SUFFIXES", "load_file"]

HEADING_SEPARATOR = " › "
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InputFileError(str(path), "looks binary (NUL bytes), not text; convert it to txt, md, html or pdf")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), f"is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8") from None


def _section(text: str, location: str, **extra: object) -> Document:
    return Document(page_content=text, metadata={"location": location, **extra})


def load_text(path: Path) -> list[Document]:
    text = _read_text(path)
    return [_section(text, "", line_start=1)]


def load_markdown(path: Path) -> list[Document]:
    sections: list[Document] = []
    headings: list[str] = []
    lines: list[str] = []
    start = 1
    in_fence = False

    def flush(next_start: int) -> None:
        nonlocal lines, start
        body = "\n".join(lines).strip()
        if body:
            heading = HEADING_SEPARATOR.join(headings)
            sections.append(_section(body, heading, heading=heading, line_start=start))
        lines, start = [], next_start

    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match:
            flush(number + 1)
            level = len(match.group(1))
            headings = [*headings[: level - 1], match.group(2).strip()]
            # Keep the heading words in the text: they are often what a question names.
            lines.append(match.group(2).strip())
        else:
            lines.append(line)
    flush(0)
    return _without_document_title(sections)


_HTML_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "table", "dt", "dd", "blockquote"]


def load_html(path: Path) -> list[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_text(path), "html.parser")
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript"]):
        tag.decompose()
    sections: list[Document] = []
    headings: list[str] = []
    parts: list[str] = []

    def flush() -> None:
        body = "\n".join(parts).strip()
        if body:
            heading = HEADING_SEPARATOR.join(headings)
            sections.append(_section(body, heading, heading=heading))
        parts.clear()

    root = soup.body or soup
    for element in root.find_all(_HTML_BLOCKS):
        # Nested blocks (a <p> inside an <li>) are read through their outermost block.
        if element.find_parent(_HTML_BLOCKS[6:]) is not None:
            continue
        text = " ".join(element.get_text(" ", strip=True).split())
        if not text:
            continue
        if element.name in _HTML_BLOCKS[:6]:
            flush()
            del headings[int(element.name[1]) - 1 :]
            headings.append(text)
            parts.append(text)
        else:
            parts.append(text)
    flush()
    if not sections:
        title = soup.title.get_text(strip=True) if soup.title else ""
        text = " ".join(soup.get_text(" ", strip=True).split())
        if text:
            sections.append(_section(text, title, heading=title))
    return _without_document_title(sections)


def _without_document_title(sections: list[Document]) -> list[Document]:
    """Drop the heading every section shares (the document's title) from the location.

    "Owner's Manual › Maintenance › Service interval" cites as "Maintenance › Service
    interval"; the full path stays in `heading`, which titles the embedded chunk.
    """
    roots = {str(s.metadata.get("heading", "")).split(HEADING_SEPARATOR)[0] for s in sections}
    if len(roots) != 1 or not next(iter(roots)):
        return sections
    root = next(iter(roots))
    for section in sections:
        rest = str(section.metadata["heading"])[len(root) :].removeprefix(HEADING_SEPARATOR)
        section.metadata["location"] = rest or root
    return sections


def load_pdf(path: Path) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            raise InputFileError(str(path), "is an encrypted PDF; save an unencrypted copy to index it")
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise InputFileError(str(path), f"is not a readable PDF ({exc})") from None
    sections = [
        _section(text.strip(), f"page {number}", page=number)
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if pages and not sections:
        raise InputFileError(str(path), "has no text layer (a scan?); run OCR on it first")
    return sections


_LOADERS: dict[str, Callable[[Path], list[Document]]] = {
    ".txt": load_text,
    ".text": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
}
SUPPORTED_SUFFIXES = frozenset(_LOADERS)


def load_file(path: Path) -> list[Document]:
    """Sections of one file; InputFileError when it is unsupported or unreadable."""
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        raise InputFileError(
            str(path),
            f"unsupported file type {path.suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
        )
    try:
        sections = loader(path)
    except PermissionError:
        raise InputFileError(str(path), "cannot be read (permission denied); check its permissions") from None
    except IsADirectoryError:
        raise InputFileError(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise InputFileError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    if not sections:
        raise InputFileError(str(path), "holds no text")
    return sections
