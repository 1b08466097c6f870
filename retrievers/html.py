"""HTML documents to sections: blocks under their heading path (h1-h6, defined terms),
site chrome (navigation, breadcrumbs, sidebars) left out. See retrievers.loaders."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.settings import DocumentSettings
from retrievers.sections import HeadingSections, decode, section

__all__ = ["parse_html"]

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
