"""EPUB books and ODT (OpenDocument text) documents to sections. See retrievers.loaders.

EPUB: the chapters in reading (spine) order, each read by the HTML parser and cited
"<chapter title> › …", the title taken from the book's table of contents, else from
the chapter's own heading. ODT: paragraphs under their headings (text:h with its
outline level), lists as lines, each table a section of its own ("Heading › table 2")
whose rows carry their header, so the splitter cuts it only between rows.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HEADING_SEPARATOR, HeadingSections
from retrievers.tables import clean_cell, table_section

__all__ = ["parse_epub", "parse_odt"]

_MAX_REPEAT = 256  # a cell "repeated" 16,384 times is the empty rest of a row


def _zip(path: Path, data: bytes, name: str, program: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputFileError(str(path), f"is not a readable {name} ({exc}); re-save it from {program}") from None


def _toc_titles(entries: Any) -> Iterator[tuple[str, str]]:
    """(file name, title) of each entry of an EbookLib table of contents, nested ones too."""
    for entry in entries:
        if isinstance(entry, list | tuple):
            yield from _toc_titles(entry)
        elif getattr(entry, "href", None):
            yield str(entry.href).split("#")[0], " ".join(str(entry.title or "").split())


def parse_epub(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    import ebooklib
    from ebooklib import epub

    from retrievers.html import parse_html

    with _zip(path, data, "EPUB", "the program that made it") as archive:
        if "META-INF/encryption.xml" in archive.namelist():
            raise InputFileError(
                str(path), "is an encrypted (DRM-protected) EPUB; index a copy without DRM or the book's source"
            )
    try:
        book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": False})
    except (epub.EpubException, zipfile.BadZipFile, KeyError, ValueError, AttributeError, TypeError) as exc:
        reason = getattr(exc, "msg", None) or exc
        raise InputFileError(
            str(path), f"is not a readable EPUB ({reason}); re-save it from the program that made it"
        ) from None
    titles: dict[str, str] = {}
    for href, title in _toc_titles(book.toc):
        titles.setdefault(href, title)
    sections: list[Document] = []
    for number, (idref, _linear) in enumerate(book.spine, start=1):
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        name = item.get_name()
        chapter_notes: list[str] = []
        try:
            chapter = parse_html(path.parent / name, item.get_content(), options, chapter_notes)
        except InputFileError as exc:
            notes.append(f"chapter {name}: left out, it {exc.reason}")
            continue
        notes.extend(f"chapter {name}: {note}" for note in chapter_notes)
        if not chapter:
            continue
        title = titles.get(name) or str(chapter[0].metadata.get("heading") or "").split(HEADING_SEPARATOR)[0]
        title = title or f"chapter {number}"
        for each in chapter:
            location = str(each.metadata.get("location") or "")
            if location != title and not location.startswith(title + HEADING_SEPARATOR):
                each.metadata["location"] = HEADING_SEPARATOR.join(p for p in (title, location) if p)
            heading = str(each.metadata.get("heading") or "")
            if not heading.startswith(title):
                each.metadata["heading"] = HEADING_SEPARATOR.join(p for p in (title, heading) if p)
            each.metadata["chapter"] = title
            sections.append(each)
    return sections


def _local(node: Any) -> str:
    qname = getattr(node, "qname", None)
    return str(qname[1]) if qname else ""


def _odf_text(node: Any) -> str:
    from odf import teletype

    return " ".join(teletype.extractText(node).split())


def _odf_row(row: Any, ns: str) -> list[str]:
    cells: list[str] = []
    for cell in row.childNodes:
        if _local(cell) not in ("table-cell", "covered-table-cell"):
            continue
        text = clean_cell(_odf_text(cell))
        repeat = cell.attributes.get((ns, "number-columns-repeated"))
        count = min(int(repeat), _MAX_REPEAT) if repeat and str(repeat).isdigit() else 1
        cells.extend([text] * count)
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _odf_rows(table: Any, ns: str) -> Iterator[list[str]]:
    for node in table.childNodes:
        kind = _local(node)
        if kind == "table-row":
            yield _odf_row(node, ns)
        elif kind in ("table-header-rows", "table-rows", "table-row-group"):
            yield from _odf_rows(node, ns)


class _OdtReader:
    def __init__(self) -> None:
        from odf.namespaces import TABLENS, TEXTNS

        self.text_ns, self.table_ns = TEXTNS, TABLENS
        self.out = HeadingSections()
        self.tables: list[Document] = []

    def walk(self, node: Any) -> None:
        for child in node.childNodes:
            kind = _local(child)
            if kind == "h":
                level = child.attributes.get((self.text_ns, "outline-level"))
                text = _odf_text(child)
                if text:
                    self.out.heading(int(level) if level and str(level).isdigit() else 1, text, 0)
            elif kind == "p":
                if text := _odf_text(child):
                    self.out.lines.append(text)
            elif kind == "table":
                self.table(child)
            elif kind in ("list", "list-item", "list-header", "section", "index-body", "table-of-content"):
                self.walk(child)

    def table(self, node: Any) -> None:
        rows = [row for row in _odf_rows(node, self.table_ns) if any(row)]
        if not rows:
            return
        label = f"table {len(self.tables) + 1}"
        heading = HEADING_SEPARATOR.join(self.out.headings)
        table = table_section(rows[0], rows[1:], label, label, heading=heading)
        if table is not None:
            self.tables.append(table)

    def done(self) -> list[Document]:
        sections = self.out.done()
        for each in sections:
            each.metadata.pop("line_start", None)
        # Cited like the text around them: without the document's title when the text
        # sections lost it (retrievers.sections.without_document_title).
        roots = {str(s.metadata.get("heading", "")).split(HEADING_SEPARATOR)[0] for s in sections + self.tables}
        root = next(iter(roots)) if len(roots) == 1 else ""
        for table in self.tables:
            heading = str(table.metadata["heading"])
            where = heading[len(root) :].removeprefix(HEADING_SEPARATOR) or root if root else heading
            table.metadata["location"] = HEADING_SEPARATOR.join(p for p in (where, table.metadata["table"]) if p)
            if not heading:
                del table.metadata["heading"]
        return sections + self.tables


def parse_odt(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    from xml.parsers.expat import ExpatError

    from odf.opendocument import load

    with _zip(path, data, "ODT", "LibreOffice Writer") as archive:
        try:
            manifest = archive.read("META-INF/manifest.xml")
        except KeyError:
            manifest = b""
    if b"encryption-data" in manifest:
        raise InputFileError(
            str(path), "is password-protected; save a copy without a password from LibreOffice Writer to index it"
        )
    try:
        document = load(io.BytesIO(data))
        reader = _OdtReader()
        reader.walk(document.text)
    except (zipfile.BadZipFile, KeyError, ValueError, ExpatError, AttributeError, TypeError) as exc:
        raise InputFileError(str(path), f"is not a readable ODT ({exc}); re-save it from LibreOffice Writer") from None
    return reader.done()
