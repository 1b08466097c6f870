"""PDF and DOCX documents to sections: a section per PDF page, DOCX paragraphs under
their heading styles (tables as "cell | cell" lines). See retrievers.loaders."""

from __future__ import annotations

import io
import re
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HeadingSections, section

__all__ = ["parse_docx", "parse_pdf"]


def parse_pdf(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
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
        section(text.strip(), f"page {number}", page=number)
        for number, text in enumerate(pages, start=1)
        if text.strip()
    ]
    if pages and not sections:
        raise InputFileError(str(path), "has no text layer (a scan?); run OCR on it first")
    return sections


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
