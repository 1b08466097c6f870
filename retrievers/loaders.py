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

import csv
import io
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import InputFileError
from retrievers.detect import text_encoding

__all__ = ["HEADING_SEPARATOR", "ParseOptions", "parse"]

HEADING_SEPARATOR = " › "


@dataclass(frozen=True)
class ParseOptions:
    json_text_field: str = "text"  # dotted path into each JSON record, e.g. "body" or "content.text"
    # Bounds on one file's work: text over them is refused with the reason, never split.
    max_file_chars: int = 2_000_000
    max_line_chars: int = 100_000


def _decode(path: Path, data: bytes) -> str:
    codec = text_encoding(data)
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        name = "UTF-8" if codec == "utf-8-sig" else codec.upper().removesuffix("-LE").removesuffix("-BE")
        raise InputFileError(
            str(path), f"is not valid {name} (byte {exc.start}); re-save it as UTF-8 to index it"
        ) from None


def _numbers(found: list[int], most: int = 8) -> str:
    """ "3, 7 and 12-15": runs of numbers as ranges, at most `most` of them named."""
    runs: list[list[int]] = []
    for n in found:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    named: list[str] = []
    for a, b in runs[:most]:
        named.extend([f"{a}-{b}"] if b > a + 1 else [str(n) for n in range(a, b + 1)])
    if len(runs) > most:
        return f"{', '.join(named)} and {sum(b - a + 1 for a, b in runs[most:])} more"
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def _section(text: str, location: str, **extra: object) -> Document:
    return Document(page_content=text, metadata={"location": location, **extra})


class _HeadingSections:
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
            self.sections.append(_section(body, heading, heading=heading, line_start=self.start))
        self.lines, self.start = [], next_start

    def done(self) -> list[Document]:
        self.flush()
        # A heading with nothing under it (an index entry, a heading right above its
        # subheading) says nothing its subsections' titles don't: as a chunk of its own it
        # only crowds out the text that answers.
        sections = [s for i, s in enumerate(self.sections) if i not in self.bare] or self.sections
        return _without_document_title(sections)


def parse_text(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    return [_section(_decode(path, data), "", line_start=1)]


_MD_HEADING = re.compile(r"(#{1,6})\s+(\S.*)")  # its closing #s are cut in _md_title
_FENCE = re.compile(r"^\s*(```|~~~)")


def parse_markdown(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    out = _HeadingSections()
    in_fence = False
    for number, line in enumerate(_decode(path, data).splitlines(), start=1):
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


def parse_rst(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    """reStructuredText titles: a line underlined (and maybe overlined) by one repeated
    punctuation character; levels follow the order in which styles first appear."""
    lines = _decode(path, data).splitlines()
    out = _HeadingSections()
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


def parse_html(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # XHTML pages (an <?xml?> prolog) are meant to be read as HTML; bs4 warns about it.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(_decode(path, data), _html_parser())
    for tag in soup(["script", "style", "nav", "header", "footer", "noscript"]):
        tag.decompose()
    # Site chrome that is not in <nav>: "Prev Up Next Home" bars, breadcrumbs, sidebars.
    for tag in soup.find_all(_is_chrome):
        tag.decompose()
    out = _HeadingSections()
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
    for section in sections:
        section.metadata.pop("line_start", None)  # lines of the HTML source mean nothing to a reader
    if not sections:
        title = soup.title.get_text(strip=True) if soup.title else ""
        text = " ".join(soup.get_text(" ", strip=True).split())
        if text:
            sections.append(_section(text, title, heading=title))
    return sections


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


def parse_pdf(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    if not data.startswith(b"%PDF-"):
        raise InputFileError(str(path), "is not a PDF (it does not start with %PDF-); fix its extension")
    try:
        reader = PdfReader(io.BytesIO(data))
        # Many PDFs are encrypted only against editing, with an empty password to open.
        if reader.is_encrypted and not reader.decrypt(""):
            raise FileNotDecryptedError("password required")
        pages = [page.extract_text() or "" for page in reader.pages]
    except FileNotDecryptedError:
        raise InputFileError(
            str(path), "is an encrypted PDF that needs a password; save an unencrypted copy to index it"
        ) from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, NotImplementedError) as exc:
        raise InputFileError(str(path), f"is not a readable PDF ({exc}); re-export it") from None
    sections = [
        _section(text.strip(), f"page {number}", page=number)
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if pages and not sections:
        raise InputFileError(str(path), "has no text layer (a scan?); run OCR on it first")
    return sections


def parse_docx(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    import zipfile

    from docx import Document as open_docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = open_docx(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputFileError(str(path), f"is not a readable DOCX ({exc}); re-save it from Word") from None
    out = _HeadingSections()
    for block in blocks:
        if isinstance(block, Table):
            for row in block.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                if any(cells):
                    out.lines.append(" | ".join(cells))
            continue
        text = " ".join(block.text.split())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = _docx_heading_level(style)
        if level:
            out.heading(level, text, 0)
        else:
            out.lines.append(text)
    sections = out.done()
    for section in sections:
        section.metadata.pop("line_start", None)
    return sections


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def parse_csv(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    """One section per row, each written as "column: value" lines so the header stays with it;
    cells beyond the header are kept as "column N: value"."""
    text = _decode(path, data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise InputFileError(str(path), f"is not valid CSV ({exc})") from None
    if not rows:
        return []
    header = [h.strip() or f"column {i}" for i, h in enumerate(rows[0], start=1)]
    sections = []
    for number, row in enumerate(rows[1:], start=1):
        # A row with more cells than the header keeps them, named by position.
        names = header + [f"column {i}" for i in range(len(header) + 1, len(row) + 1)]
        pairs = [f"{name}: {value.strip()}" for name, value in zip(names, row, strict=False) if value.strip()]
        if pairs:
            sections.append(_section("\n".join(pairs), f"row {number}", row=number))
    return sections


_MISSING = object()


def _field(record: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(record, dict) or part not in record:
            return _MISSING
        record = record[part]
    return record


def _what(value: Any) -> str:
    """What a record holds where text was expected, for messages."""
    if value is _MISSING:
        return "missing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "empty text"


def _where(unit: str, found: list[int]) -> str:
    return f"{unit}{'s' if len(found) > 1 else ''} {_numbers(found)}"


def _left_out(field: str, unit: str, without: dict[str, list[int]]) -> str:
    """ "field 'text' holds a number, not text, in records 1-3; it is missing in record 4" """
    parts = [
        f"is missing in {_where(unit, found)}"
        if what == "missing"
        else f"holds {what}, not text, in {_where(unit, found)}"
        for what, found in without.items()
    ]
    return f"field {field!r} " + "; it ".join(parts)


def _records(path: Path, records: list[tuple[int, Any]], field: str, unit: str, notes: list[str]) -> list[Document]:
    sections = []
    keys: set[str] = set()
    without: dict[str, list[int]] = {}
    for number, record in records:
        value = _field(record, field)
        if isinstance(record, dict):
            keys.update(record)
        if isinstance(value, str) and value.strip():
            extra = {unit: number}
            title = record.get("title") if isinstance(record, dict) else None
            location = f"{title}" if isinstance(title, str) and title.strip() else f"{unit} {number}"
            sections.append(_section(value.strip(), location, **extra))
        else:
            without.setdefault(_what(value), []).append(number)
    seen = ", ".join(sorted(keys)[:12]) or "none: the records are not objects"
    if records and not sections:
        if set(without) == {"missing"}:
            problem = f"no record has a text field {field!r} (fields seen: {seen})"
        else:
            problem = f"no record has text: {_left_out(field, unit, without)} (fields seen: {seen})"
        raise InputFileError(str(path), f"{problem}; set ASSISTANT_JSON_TEXT_FIELD to the field that holds the text")
    if without:
        skipped = sorted(n for found in without.values() for n in found)
        notes.append(f"{_where(unit, skipped)} left out: {_left_out(field, unit, without)}")
    return sections


def _too_deep(path: Path) -> InputFileError:
    return InputFileError(
        str(path), "is JSON nested too deeply to read (over about 900 levels); flatten it to index it"
    )


def parse_json(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    try:
        value = json.loads(_decode(path, data))
    except json.JSONDecodeError as exc:
        raise InputFileError(str(path), f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise _too_deep(path) from None
    records = value if isinstance(value, list) else [value]
    return _records(path, list(enumerate(records, start=1)), options.json_text_field, "record", notes)


def parse_jsonl(path: Path, data: bytes, options: ParseOptions, notes: list[str]) -> list[Document]:
    records: list[tuple[int, Any]] = []
    bad: list[int] = []
    deep: list[int] = []
    for number, line in enumerate(_decode(path, data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError:
            bad.append(number)
        except RecursionError:
            deep.append(number)
    problems = [f"{_where('line', bad)} {'are' if len(bad) > 1 else 'is'} not valid JSON"] if bad else []
    if deep:
        problems.append(f"{_where('line', deep)} {'are' if len(deep) > 1 else 'is'} nested too deeply to read")
    if problems and not records:
        raise InputFileError(str(path), f"is not JSON Lines: {'; '.join(problems)}")
    if problems:
        notes.append(f"{'; '.join(problems)}; left out")
    return _records(path, records, options.json_text_field, "line", notes)


PARSERS: dict[str, Callable[[Path, bytes, ParseOptions, list[str]], list[Document]]] = {
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


def parse(kind: str, path: Path, data: bytes, options: ParseOptions, notes: list[str] | None = None) -> list[Document]:
    """Sections of one document of a known kind (see retrievers.detect); parts left out
    are described in `notes`."""
    return PARSERS[kind](path, data, options, notes if notes is not None else [])
