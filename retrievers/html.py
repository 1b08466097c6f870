"""HTML documents to sections: blocks under their heading path (h1-h6, defined terms),
site chrome (navigation, breadcrumbs, sidebars) left out. See retrievers.loaders.

A data table (two rows and two columns or more) is a section of its own, each row
written with its header (retrievers.tables), cited as "<heading path> › table K"; a
table used for layout (one row or one column) is read as text."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.settings import DocumentSettings
from retrievers.sections import HEADING_SEPARATOR, HeadingSections, decode, section
from retrievers.tables import clean_cell, looks_like_header, table_section

__all__ = ["parse_html"]

_HTML_HEADINGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_TERM_LEVEL = 7  # below every hN: a <dt> ends at the next <dt> or heading
_MAX_TERM_HEADING = 120  # a longer <dt> is text, not a name
_HTML_BLOCKS = [*_HTML_HEADINGS, "p", "li", "pre", "table", "dt", "dd", "blockquote"]
_MAX_SPAN = 50  # a colspan or rowspan past this is a broken attribute, not a layout
_TABLE_TITLE = re.compile(r"Table\s+[\w.-]+\b.{0,110}", re.IGNORECASE)


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
    tables: dict[str, int] = {}  # heading path -> its tables so far
    for element in root.find_all(_HTML_BLOCKS):
        # Nested blocks (a <p> inside an <li>) are read through their outermost block.
        if element.find_parent(_HTML_BLOCKS[6:]) is not None:
            continue
        text = " ".join(element.get_text(" ", strip=True).split())
        if not text:
            continue
        if element.name == "table" and (grid := _grid(element)) is not None:
            out.flush()
            under = HEADING_SEPARATOR.join(out.headings)
            tables[under] = tables.get(under, 0) + 1
            header, rows = grid
            label = f"table {tables[under]}"
            made = table_section(header, rows, under, label, caption=_caption(element), heading=under)
            if made is not None:
                out.sections.append(made)
        elif element.name in _HTML_HEADINGS:
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
        if table := each.metadata.get("table"):  # its location is its heading's, as shown
            where = each.metadata["location"]
            each.metadata["location"] = f"{where}{HEADING_SEPARATOR}{table}" if where else str(table)
    if not sections:
        title = soup.title.get_text(strip=True) if soup.title else ""
        text = " ".join(soup.get_text(" ", strip=True).split())
        if text:
            sections.append(section(text, title, heading=title))
    return sections


def _span(cell: Any, name: str) -> int:
    try:
        return max(1, min(_MAX_SPAN, int(str(cell.get(name) or 1).strip())))
    except ValueError:
        return 1


def _grid(table: Any) -> tuple[list[str], list[list[str]]] | None:
    """A table's header and rows of cell texts, spans filled in so that each cell sits under
    its column; None for a layout table (under two rows or two columns)."""
    rows: list[list[str]] = []
    heads: list[bool] = []  # whether each row is all <th> or in <thead>
    below: dict[int, tuple[str, int]] = {}  # column -> (text, rows still spanned) of rowspans
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:  # a nested table's rows are its cell's text
            continue
        cells = tr.find_all(["th", "td"], recursive=False)
        row: list[str] = []
        for cell in cells:
            while len(row) in below:
                row.append(_carry(below, len(row)))
            text = clean_cell(cell.get_text(" ", strip=True))
            for _ in range(_span(cell, "colspan")):
                if (span := _span(cell, "rowspan")) > 1:
                    below[len(row)] = (text, span - 1)
                row.append(text)
        while len(row) in below:
            row.append(_carry(below, len(row)))
        if any(row):
            rows.append(row)
            heads.append(tr.find_parent("thead") is not None or all(c.name == "th" for c in cells))
    if len(rows) < 2 or max(len(row) for row in rows) < 2:
        return None
    if heads[0] or looks_like_header(rows):
        return rows[0], rows[1:]
    return [], rows


def _carry(below: dict[int, tuple[str, int]], column: int) -> str:
    text, left = below.pop(column)
    if left > 1:
        below[column] = (text, left - 1)
    return text


def _caption(table: Any) -> str:
    """A table's <caption>, else the "Table 8.2. Numeric Types" title just before it
    (DocBook and Sphinx write it so), else its summary attribute."""
    if (caption := table.find("caption")) is not None and caption.find_parent("table") is table:
        return clean_cell(caption.get_text(" ", strip=True))
    around = set(map(id, table.parents))
    for before in table.find_all_previous(["p", "div", "span", "strong", "b"], limit=8):
        if id(before) in around:  # the table's own wrappers come before it too
            continue
        text = clean_cell(before.get_text(" ", strip=True))
        if _TABLE_TITLE.fullmatch(text):
            return text
        break
    return clean_cell(table.get("summary") or "")
