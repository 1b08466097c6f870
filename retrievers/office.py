"""DOCX documents to sections: paragraphs under their heading styles (tables as
"cell | cell" lines). See retrievers.loaders."""

from __future__ import annotations

import io
import re
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HeadingSections

__all__ = ["parse_docx"]


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
    for each in sections:
        each.metadata.pop("line_start", None)
    return sections


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0
