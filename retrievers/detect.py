"""What kind of document a file is, from its bytes as well as its name.

The extension is a claim; the content decides. A `.pdf` that does not start with
`%PDF-` is not parsed as a PDF, a file without an extension that holds HTML is read
as HTML, and binary content of a kind we do not read is skipped, not decoded.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

__all__ = ["BINARY", "KINDS", "detect_kind"]

BINARY = "binary"
_BY_SUFFIX = {
    ".txt": "txt",
    ".text": "txt",
    ".log": "txt",
    ".md": "md",
    ".markdown": "md",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
KINDS = frozenset(_BY_SUFFIX.values())


def _magic(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" in archive.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            pass
        return BINARY
    return None


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    # Control bytes other than tab, newline, carriage return and form feed mark binary formats.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return bool(head) and controls / len(head) > 0.05


def _sniff_text(data: bytes) -> str:
    head = data[:2048].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "html"
    if head[:1] in (b"{", b"["):
        try:
            json.loads(data.decode("utf-8-sig"))
            return "json"
        except (UnicodeDecodeError, ValueError):
            pass
    return "txt"


def detect_kind(path: Path, data: bytes) -> str:
    """One of KINDS, or BINARY for content we cannot read as any of them.

    A `.pdf` or `.docx` whose content is something else keeps its claimed kind, so
    that the parser reports the mismatch by name.
    """
    claimed = _BY_SUFFIX.get(path.suffix.lower())
    found = _magic(data)
    if found in ("pdf", "docx"):
        return found
    if claimed in ("pdf", "docx"):
        return claimed  # its parser reports that the content is not a real PDF or DOCX
    if found == BINARY or _looks_binary(data):
        return BINARY
    return claimed or _sniff_text(data)
