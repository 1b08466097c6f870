"""DOCX documents to sections: paragraphs under their heading styles; each table a
section of its own, its first row the header of every other row (retrievers.tables),
cited as "<heading path> › table K". See retrievers.loaders."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HEADING_SEPARATOR, HeadingSections
from retrievers.tables import clean_cell, table_section

__all__ = ["parse_docx"]

_CAPTION = re.compile(r"Table\s+[\w.-]+\b.{0,110}", re.IGNORECASE)  # "Table 3: Torque values"


def parse_docx(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    import zipfile

    from docx import Document as open_docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = open_docx(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputFileError(str(path), f"is not a readable DOCX ({exc}); re-save it from Word") from None
    out = HeadingSections()
    tables: dict[str, int] = {}  # heading path -> its tables so far
    before = ""  # the paragraph before, a table's caption when it reads like one
    for block in blocks:
        if isinstance(block, Table):
            _add_table(out, tables, block, before)
            before = ""
            continue
        text = " ".join(block.text.split())
        before = text
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = _docx_heading_level(style)
        if level:
            out.heading(level, text, 0)
        else:
            out.lines.append(text)
    sections = out.done()
    for each in sections:
        each.metadata.pop("line_start", None)
        if label := each.metadata.get("table"):  # its location is its heading's, as shown
            where = each.metadata["location"]
            each.metadata["location"] = f"{where}{HEADING_SEPARATOR}{label}" if where else str(label)
    return sections


def _add_table(out: HeadingSections, tables: dict[str, int], table: Any, before: str) -> None:
    rows: list[list[str]] = []
    for row in table.rows:
        cells = [clean_cell(cell.text) for cell in row.cells]
        if any(cells):
            rows.append(cells)
    if len(rows) < 2 or max(len(row) for row in rows) < 2:
        # One row or one column: a box around text (a note, a signature block), read as text.
        out.lines.extend(" | ".join(cell for cell in row if cell) for row in rows)
        return
    out.flush()
    path = HEADING_SEPARATOR.join(out.headings)
    tables[path] = tables.get(path, 0) + 1
    label = f"table {tables[path]}"
    caption = before if _CAPTION.fullmatch(before) else ""
    made = table_section(rows[0], rows[1:], path, label, caption=caption, heading=path)
    if made is not None:
        out.sections.append(made)


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0
