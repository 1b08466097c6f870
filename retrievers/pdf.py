"""PDF documents to sections: a section per page with a text layer. See retrievers.loaders."""

from __future__ import annotations

import io
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import section

__all__ = ["parse_pdf"]


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
