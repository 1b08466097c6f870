"""XLSX workbooks to sections: one section per non-empty row, written with its sheet's
header ("Zone: 3; Rate: 4.50 EUR"), cited as "<sheet> › row N". See retrievers.loaders.

A row is its own section, as a CSV row is, rather than one table section per sheet:
the citation then names the exact sheet and row the answer came from, whatever the
splitter does, and a row found alone still says what its cells are because the header
is written into it. The row number is the one Excel shows, so a reader can go to it.
Formulas are read as the values Excel last computed and saved (`data_only`); a sheet
with no value in any cell gives nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HEADING_SEPARATOR, section
from retrievers.tables import clean_cell, row_line

__all__ = ["OLE_MAGIC", "office_mismatch", "parse_xlsx"]

# An encrypted (password-protected) Office file is an OLE compound file, not a ZIP; so
# are the legacy .xls, .ppt and .doc formats.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def office_mismatch(path: Path, data: bytes, name: str, program: str) -> InputFileError | None:
    """The error for content that is not an Office Open XML package at all."""
    if data.startswith(OLE_MAGIC):
        return InputFileError(
            str(path),
            f"is password-protected or in the older binary format (not a readable {name}); "
            f"save a copy without a password as {name} from {program} to index it",
        )
    if not data.startswith(b"PK\x03\x04"):
        return InputFileError(
            str(path), f"is not a readable {name} (it is not a ZIP package); re-save it from {program}"
        )
    return None


def _cell(value: object) -> str:
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return clean_cell(value)


def parse_xlsx(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    if error := office_mismatch(path, data, "XLSX", "Excel"):
        raise error
    try:
        # read_only streams rows (a large workbook is never held as cell objects);
        # data_only gives each formula's cached value, not its formula text.
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise InputFileError(str(path), f"is not a readable XLSX ({exc}); re-save it from Excel") from None
    sections: list[Document] = []
    try:
        # Hidden sheets are read too: hiding is layout, not a wish to keep the data out,
        # and a question about it should find it.
        for sheet in book.worksheets:
            # The size a sheet declares may be wrong (some writers put "A1"): read every row.
            sheet.reset_dimensions()
            sections.extend(_sheet_rows(sheet.title, sheet.iter_rows(values_only=True)))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise InputFileError(str(path), f"is not a readable XLSX ({exc}); re-save it from Excel") from None
    finally:
        book.close()
    if unsaved := _formulas_without_values(data):
        shown = ", ".join(unsaved[:5]) + (f" and {len(unsaved) - 5} more" if len(unsaved) > 5 else "")
        notes.append(
            f"{len(unsaved)} formula cell{'' if len(unsaved) == 1 else 's'} ({shown}) hold no saved value and "
            "were left out: the program that wrote the file did not compute them; open and save it in Excel "
            "or LibreOffice to index them"
        )
    return sections


# A cell whose formula has no cached value: <c r="D5"><f>B5*12</f></c> (or <f .../> shared).
_UNSAVED_FORMULA = re.compile(
    rb'<c r="([A-Z]{1,3}[0-9]+)"[^>]*>\s*<f\b[^>]*(?:/>|>[^<]*</f>)\s*(?:<v\s*/>|<v>\s*</v>)?\s*</c>'
)


def _formulas_without_values(data: bytes) -> list[str]:
    """The cells (by reference) whose formula was stored without its computed value.

    openpyxl reads those as empty, exactly like empty cells, so the sheets' XML is
    looked at for them: files written by libraries (openpyxl, pandas) carry no values."""
    import zipfile

    found: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for name in archive.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    found.extend(ref.decode() for ref in _UNSAVED_FORMULA.findall(archive.read(name)))
    except (zipfile.BadZipFile, OSError, KeyError):
        return []
    return found


def _sheet_rows(title: str, rows: Iterable[Sequence[object]]) -> list[Document]:
    header: list[str] | None = None
    header_at = 0
    out: list[Document] = []
    for number, values in enumerate(rows, start=1):
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue
        if header is None:
            header, header_at = cells, number  # the first non-empty row names the columns
            continue
        text = row_line(header, cells)
        out.append(section(text, f"{title}{HEADING_SEPARATOR}row {number}", heading=title, sheet=title, row=number))
    if header is not None and not out:
        # A header row alone: kept, it may be all the sheet says.
        text = " | ".join(cell for cell in header if cell)
        out.append(
            section(text, f"{title}{HEADING_SEPARATOR}row {header_at}", heading=title, sheet=title, row=header_at)
        )
    return out
