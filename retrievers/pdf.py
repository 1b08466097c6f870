"""PDF documents to sections: a "page N" section per page with text, each ruled table
as its own section of rows with their header ("page N › table K"). See retrievers.loaders.

The text layer is read with pypdfium2 (PDFium, in C). Tables are found with
pdfplumber, which follows ruling lines, on the pages that draw enough lines for one:
pdfplumber reads a page in Python (50 pages of plain text: 22 s, against 1.0 s for pypdf
and 0.3 s for PDFium), so pages that draw no table are never handed to it. On a page
with tables, the page's section is pdfplumber's text outside them, so no cell is
indexed twice. Pages with no text and no table (scans), and pages that are one large
image under a few characters of text (a scan stamped with a page number or a fax
header), are read by OCR (retrievers.ocr), their sections marked `ocr`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import section
from retrievers.tables import clean_cell, looks_like_header, table_section

__all__ = ["parse_pdf"]

# pdfplumber builds a table's cells from ruling edges; two rows of two cells need three
# rules each way. Edges shorter than a few points (underscores, bullets) rule nothing.
_MIN_RULES = 3
_MIN_EDGE = 8.0  # points
_CAPTION_GAP = 24.0  # points above a table in which a short line is its caption
_MAX_CAPTION = 120
# A scanned page may still carry a little text (a page number, a Bates stamp, a fax header
# line): under this many characters over an image of most of the page, it is read as a scan.
_STAMP_CHARS = 40
_SCAN_AREA = 0.5


def parse_pdf(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    if not data.startswith(b"%PDF-"):
        raise InputFileError(str(path), "is not a PDF (it does not start with %PDF-); fix its extension")
    texts, ruled, scanned = _text_layer(path, data)
    tabled = _tables(data, ruled, notes) if ruled else {}
    sections: list[Document] = []
    blank: list[int] = []
    stamps: dict[int, str] = {}  # the little text of scanned pages: kept when OCR reads nothing
    for number, text in enumerate(texts, start=1):
        if number in tabled:
            sections.extend(tabled[number])
        elif number in scanned:
            blank.append(number)
            if text:
                stamps[number] = text
        elif text:
            sections.append(section(text, f"page {number}", page=number))
        else:
            blank.append(number)
    if blank:
        sections = _with_ocr(path, data, options, notes, sections, blank, stamps)
    return sections


def _text_layer(path: Path, data: bytes) -> tuple[list[str], list[int], set[int]]:
    """Each page's text, the pages that draw enough lines to hold a ruled table, and the
    pages that are a scan under a few characters of text."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    from retrievers.ocr import PDFIUM_LOCK  # PDFium is not thread-safe: one call at a time in the process

    texts: list[str] = []
    ruled: list[int] = []
    scanned: set[int] = set()
    with PDFIUM_LOCK:
        try:
            # An empty password is tried first: many PDFs are encrypted only against editing.
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
                raise InputFileError(
                    str(path), "is an encrypted PDF that needs a password; save an unencrypted copy to index it"
                ) from None
            raise InputFileError(str(path), f"is not a readable PDF ({exc}); re-export it") from None
        try:
            for index in range(len(document)):
                page = document[index]
                try:
                    text = _page_text(page)
                    texts.append(text)
                    if 0 < len("".join(text.split())) < _STAMP_CHARS and _mostly_image(page, pdfium_c):
                        scanned.add(index + 1)
                    elif _draws_table(page, pdfium_c):
                        ruled.append(index + 1)
                finally:
                    page.close()
        except pdfium.PdfiumError as exc:
            raise InputFileError(
                str(path), f"is not a readable PDF (page {len(texts) + 1}: {exc}); re-export it"
            ) from None
        finally:
            document.close()
    return texts, ruled, scanned


def _mostly_image(page: Any, pdfium_c: Any) -> bool:
    """Whether one image covers at least _SCAN_AREA of the page."""
    width, height = page.get_size()
    area = width * height
    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=3):
        left, bottom, right, top = image.get_bounds()
        if area > 0 and (right - left) * (top - bottom) >= _SCAN_AREA * area:
            return True
    return False


def _page_text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_bounded()
    finally:
        textpage.close()
    # PDFium ends lines with \r\n and marks a hyphen that breaks a word at a line end as \x02.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "-").strip()


def _draws_table(page: Any, pdfium_c: Any) -> bool:
    """Whether the page draws the rules of a table: at least three long-enough horizontal
    and three vertical edges (a rectangle gives two of each; a path of more segments than a
    rectangle may draw a whole grid)."""
    across = down = 0
    for shape in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=3):
        left, bottom, right, top = shape.get_bounds()
        wide, tall = right - left >= _MIN_EDGE, top - bottom >= _MIN_EDGE
        if wide and tall:
            rules = _MIN_RULES if pdfium_c.FPDFPath_CountSegments(shape.raw) > 5 else 2
            across, down = across + rules, down + rules
        else:
            across, down = across + wide, down + tall
        if across >= _MIN_RULES and down >= _MIN_RULES:
            return True
    return False


def _tables(data: bytes, pages: list[int], notes: list[str]) -> dict[int, list[Document]]:
    """Page number -> its sections (text outside the tables, then the tables), for the
    given pages that hold a table; pages without one are left to the text layer."""
    import pdfplumber

    found: dict[int, list[Document]] = {}
    try:
        with pdfplumber.open(io.BytesIO(data), pages=pages) as pdf:
            for page in pdf.pages:
                if sections := _page_sections(page, page.page_number):
                    found[page.page_number] = sections
    except Exception as exc:  # pdfminer raises many kinds (PSEOF, struct.error...); PDFium read the text
        from retrievers.ocr import page_list

        notes.append(
            f"tables on {page_list(pages)} not read as tables ({type(exc).__name__}: {exc}); "
            "their text is indexed as it reads"
        )
        return {}
    return found


def _page_sections(page: Any, number: int) -> list[Document]:
    """The page's text outside its tables ("page N"), then its tables ("page N › table K");
    [] when it has no table."""
    # A "table" of one row or one column is a box drawn around text (a note, a frame): text.
    tables = [t for t in page.find_tables() if len(t.rows) >= 2 and max(len(r.cells) for r in t.rows) >= 2]
    if not tables:
        return []
    outside = page
    for table in tables:
        outside = outside.outside_bbox(table.bbox)
    text = (outside.extract_text() or "").strip()
    found = [section(text, f"page {number}", page=number)] if text else []
    count = 0
    for table in tables:
        rows = [[clean_cell(cell) for cell in row] for row in table.extract()]
        rows = [row for row in rows if any(row)]
        header = rows[0] if looks_like_header(rows) else []
        label = f"table {count + 1}"
        made = table_section(
            header,
            rows[1:] if header else rows,
            f"page {number} › {label}",
            label,
            caption=_caption(outside, table.bbox),
            page=number,
        )
        if made is not None:
            found.append(made)
            count += 1
    return found


def _caption(page: Any, bbox: tuple[float, float, float, float]) -> str:
    """The short line right above a table ("Table 3. Rates per zone"), or "" (`page`: the
    page without its tables, so that a table's last row is never the next one's caption)."""
    top = bbox[1]
    above = max(page.bbox[1], top - _CAPTION_GAP)
    if top - above < 4:
        return ""
    lines = (page.crop((page.bbox[0], above, page.bbox[2], top)).extract_text() or "").splitlines()
    line = clean_cell(lines[-1]) if lines else ""
    if not line or len(line) > _MAX_CAPTION or line[-1] in ".,":
        return ""
    return line


def _with_ocr(
    path: Path,
    data: bytes,
    options: DocumentSettings,
    notes: list[str],
    sections: list[Document],
    blank: list[int],
    stamps: dict[int, str],
) -> list[Document]:
    """The sections with the OCR text of the pages that have no text layer, in page order."""
    from retrievers.ocr import ocr_pdf_pages

    noted = len(notes)
    read = ocr_pdf_pages(path, data, blank, options, notes)
    scanned = [section(text.strip(), f"page {n}", page=n, ocr=True) for n, text in sorted(read.items()) if text.strip()]
    done = {int(s.metadata["page"]) for s in scanned}
    sections = sections + [section(text, f"page {n}", page=n) for n, text in stamps.items() if n not in done]
    if sections or scanned:
        return sorted([*sections, *scanned], key=lambda s: int(s.metadata["page"]))
    # Nothing indexed from the file: why goes in its failure, not in a "partly indexed" note.
    why = "; ".join(notes[noted:]) or "OCR found no text on its pages"
    del notes[noted:]
    raise InputFileError(str(path), f"has no text layer (a scan?) and nothing could be read from it: {why}")
