"""What kind of document a file is, and how its text is encoded, from its bytes as well as its name.

The extension is a claim; the content decides. A `.pdf` that does not start with
`%PDF-` is not parsed as a PDF, a file without an extension that holds HTML is read
as HTML, UTF-16 and UTF-32 text (with or without a byte order mark) is read as text,
and binary content of a kind we do not read is skipped, not decoded.

Office packages are ZIP files told apart by their members (`xl/workbook.xml` is a
workbook, `ppt/presentation.xml` a slide deck, `word/document.xml` a Word document,
a `mimetype` member an EPUB or OpenDocument text); images by their signature; an
e-mail by the RFC 5322 header lines it starts with, a mailbox by its "From " line.
A file that claims an office kind by its extension but holds something else (an
encrypted Office file is an OLE container, not a ZIP) keeps its claimed kind, so
that its parser names what is wrong instead of the file being skipped as binary.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["BINARY", "KINDS", "detect_kind", "text_encoding"]

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
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".pptx": "pptx",
    ".eml": "eml",
    ".mbox": "mbox",
    ".epub": "epub",
    ".odt": "odt",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}
KINDS = frozenset(_BY_SUFFIX.values())
_HEAD = 8192
# UTF-32 first: its little-endian mark starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WIDE = (("utf-32-le", 4), ("utf-32-be", 4), ("utf-16-le", 2), ("utf-16-be", 2))


# Binary document kinds whose claim (the extension) stands when the content is not what
# it claims: their parsers say what is wrong ("is not a readable XLSX ..."). A claimed
# e-mail or mailbox holding binary content stands too.
_PACKAGES = frozenset({"pdf", "docx", "xlsx", "pptx", "epub", "odt"})
_ZIP_MEMBERS = (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"), ("ppt/presentation.xml", "pptx"))
_ZIP_MIMETYPES = {"application/epub+zip": "epub", "application/vnd.oasis.opendocument.text": "odt"}
_MAIL_HEADERS = frozenset(
    {"from", "to", "cc", "subject", "date", "message-id", "mime-version", "received", "return-path", "reply-to"}
)
_HEADER_LINE = re.compile(rb"([A-Za-z][A-Za-z0-9-]*):[ \t]?")


def _zip_kind(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            for member, kind in _ZIP_MEMBERS:
                if member in names:
                    return kind
            if "mimetype" in names:
                with archive.open("mimetype") as member_file:
                    mimetype = member_file.read(100).decode("ascii", "replace").strip()
                return _ZIP_MIMETYPES.get(mimetype, BINARY)
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, NotImplementedError):
        pass
    return BINARY


def _image(data: bytes) -> str | None:
    """ "image" for content that starts as a PNG, JPEG or TIFF does (a damaged one
    included: its parser says what is wrong with it), else None."""
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")):
        return "image"
    return None


def _magic(data: bytes) -> str | None:
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    return _image(data)


def _mail_kind(data: bytes) -> str | None:
    """ "mbox" for a first line "From " followed by header lines, "eml" for a message
    whose header block (before the first blank line) has at least two of the usual
    RFC 5322 header fields; None otherwise."""
    lines = data[:_HEAD].replace(b"\r\n", b"\n").split(b"\n")
    kind = "eml"
    if lines and lines[0].startswith(b"From ") and not lines[0].startswith(b"From: "):
        kind, lines = "mbox", lines[1:]
    seen: set[str] = set()
    for line in lines[:-1]:  # the last may be cut off by _HEAD
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            continue  # a folded header's continuation
        match = _HEADER_LINE.match(line)
        if match is None:
            return None  # not a header block
        seen.add(match.group(1).decode("ascii").lower())
    return kind if len(seen & _MAIL_HEADERS) >= 2 else None


def _controls(text: str) -> float:
    """Share of control characters other than tab, newline, carriage return and form feed."""
    if not text:
        return 0.0
    return sum(1 for c in text if ord(c) < 32 and c not in "\t\n\f\r") / len(text)


def _wide_text(head: bytes, codec: str) -> bool:
    """Whether `head` reads as text in a UTF-16 or UTF-32 codec (an incomplete last character is fine)."""
    try:
        text = codecs.getincrementaldecoder(codec)().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and "\x00" not in text and _controls(text) <= 0.05


def _nul_pattern(head: bytes, width: int, big_endian: bool) -> bool:
    """Text without a byte order mark: in UTF-16 (UTF-32) Latin-script text, the high byte
    (bytes) of almost every code unit is NUL, and the low byte almost never is."""
    units = len(head) // width
    if units < 2:
        return False
    low = width - 1 if big_endian else 0
    nul_low = sum(1 for i in range(units) if head[i * width + low] == 0)
    high = range(width - 1) if big_endian else range(1, width)
    nul_high = min(sum(1 for i in range(units) if head[i * width + h] == 0) for h in high)
    return nul_high >= 0.6 * units and nul_low <= 0.05 * units


def text_encoding(data: bytes) -> str:
    """The codec that reads this text: UTF-16 or UTF-32 when a byte order mark or the
    pattern of NUL bytes says so, else UTF-8 (a UTF-8 byte order mark is dropped)."""
    head = data[:_HEAD]
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec if _wide_text(head, codec) else "utf-8-sig"
    if b"\x00" in head:
        for codec, width in _WIDE:
            if _nul_pattern(head, width, codec.endswith("be")) and _wide_text(
                head[: len(head) // width * width], codec
            ):
                return codec
    return "utf-8-sig"


def _looks_binary(data: bytes) -> bool:
    head = data[:_HEAD]
    if b"\x00" in head:
        return True
    # Control bytes other than tab, newline, carriage return and form feed mark binary formats.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return bool(head) and controls / len(head) > 0.05


def _sniff_text(head: str, whole: Callable[[], str]) -> str:
    lowered = head[:2048].lstrip().lower()
    if lowered.startswith(("<!doctype html", "<html")) or "<body" in lowered:
        return "html"
    if lowered[:1] in ("{", "["):
        try:
            json.loads(whole())
            return "json"
        except RecursionError:
            return "json"  # JSON nested too deep to read: its parser reports it by name
        except (UnicodeDecodeError, ValueError):
            pass
    return "txt"


def detect_kind(path: Path, data: bytes) -> str:
    """One of KINDS, or BINARY for content we cannot read as any of them.

    A `.pdf`, `.docx` or other office file (see _PACKAGES) whose content is something
    else keeps its claimed kind, so that the parser reports the mismatch by name.
    """
    claimed = _BY_SUFFIX.get(path.suffix.lower())
    found = _magic(data)
    if found is not None and found != BINARY:
        return found
    if claimed in _PACKAGES:
        return claimed  # its parser reports that the content is not a real PDF, DOCX, XLSX ...
    codec = text_encoding(data)
    if found == BINARY or (codec == "utf-8-sig" and _looks_binary(data)):
        # Its parser says it is no e-mail, or no readable image.
        return claimed if claimed in ("eml", "mbox", "image") else BINARY
    if claimed == "image":
        claimed = None  # text named .png: the content decides
    # A saved message may come without an extension or as .txt; other text kinds keep
    # their claim (a Markdown file may start with "Title:" and "Date:" lines).
    if claimed in (None, "txt", "eml", "mbox") and codec == "utf-8-sig":
        mail = _mail_kind(data)
        if mail:
            return mail
    if claimed:
        return claimed
    head = codecs.getincrementaldecoder(codec)(errors="replace").decode(data[:_HEAD], final=False)
    return _sniff_text(head, lambda: data.decode(codec))
