"""Parse one document's bytes into sections: text plus where it sits.

Each section is a LangChain `Document` whose metadata holds `location`, what a
citation shows ("Maintenance › Service intervals", "page 2", "row 14", "line 12"),
and, where known, `heading`, `page`, `row` or `line_start`. Parsers work on bytes
already read (and hashed) by the ingestor, so the text indexed is exactly the
content whose hash is recorded. A document that cannot be parsed raises
InputFileError naming the file and the reason; a part of it left out (a JSON Lines
line that is not JSON, a record without text) is named in `notes`, never dropped
silently.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.settings import DocumentSettings
from retrievers.office import parse_docx, parse_pdf
from retrievers.records import parse_csv, parse_json, parse_jsonl
from retrievers.sections import HeadingSections, decode, section

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


_HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_TERM_LEVEL = 7  # below every hN: a <dt> ends at the next <dt> or heading
_MAX_TERM_HEADING = 120  # a longer <dt> is text, not a name
_HTML_BLOCKS = [*_HTML_HEADINGS, "p", "li", "pre", "table", "dt", "dd", "blockquote"]


def _html_parser() -> str:
    try:
        import lxml  # noqa: F401  (several times faster than html.parser)

        return "lxml"
    except ImportError:
        return "html.parser"


_CHROME = re.compile(r"^(nav[\w-]*|breadcrumbs?|sidebar|skip-?links?|site-(header|footer))$", re.IGNORECASE)


def _is_chrome(tag: Any) -> bool:
    if tag.get("role") == "navigation":
        return True
    return any(_CHROME.match(token) for token in tag.get("class") or [])


def _defines(term: Any) -> bool:
    """Whether a <dt> is followed by a definition in prose (not by a nested list of entries,
    as in a book's index, whose terms would each become a chunk that says nothing)."""
    definition = term.find_next_sibling(["dd", "dt"])
    if definition is None or definition.name != "dd":
        return False
    nested = definition.find("dl")
    return nested is None or definition.find("p") is not None


def parse_html(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # XHTML pages (an <?xml?> prolog) are meant to be read as HTML; bs4 warns about it.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(decode(path, data), _html_parser())
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript"]):
        tag.decompose()
    # Site chrome that is not in <nav>: "Prev Up Next Home" bars, breadcrumbs, sidebars.
    for tag in soup.find_all(_is_chrome):
        tag.decompose()
    out = HeadingSections()
    # The page's <title> heads every path (a manual page's name is what questions name),
    # unless its first heading says it already.
    title = " ".join(soup.title.get_text(" ", strip=True).split()) if soup.title else ""
    first = soup.find(_HTML_HEADINGS)
    if title and (first is None or " ".join(first.get_text(" ", strip=True).split()) != title):
        out.heading(0, title, 0)
        out.lines.clear()
    root = soup.body or soup
    for element in root.find_all(_HTML_BLOCKS):
        # Nested blocks (a <p> inside an <li>) are read through their outermost block.
        if element.find_parent(_HTML_BLOCKS[6:]) is not None:
            continue
        text = " ".join(element.get_text(" ", strip=True).split())
        if not text:
            continue
        if element.name in _HTML_HEADINGS:
            out.heading(int(element.name[1]), text, 0)
        elif element.name == "dt" and len(text) <= _MAX_TERM_HEADING and _defines(element):
            # A defined term (a parameter, an option, a glossary entry) heads its definition:
            # it is what questions name, so it belongs in the title of the chunks below it.
            out.heading(_TERM_LEVEL, text, 0)
        else:
            out.lines.append(text)
    sections = out.done()
    for each in sections:
        each.metadata.pop("line_start", None)  # lines of the HTML source mean nothing to a reader
    if not sections:
        title = soup.title.get_text(strip=True) if soup.title else ""
        text = " ".join(soup.get_text(" ", strip=True).split())
        if text:
            sections.append(section(text, title, heading=title))
    return sections


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
}


def parse(
    kind: str, path: Path, data: bytes, options: DocumentSettings, notes: list[str] | None = None
) -> list[Document]:
    """Sections of one document of a known kind (see retrievers.detect); parts left out
    are described in `notes`."""
    return PARSERS[kind](path, data, options, notes if notes is not None else [])
