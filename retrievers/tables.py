"""Tables as sections: each row written with its header, so a row found alone still says
what its cells are ("Zone: 3; Rate: 4.50 EUR; Days: 2").

A table becomes one section whose lines are its rows, after its caption line when it has
one ("Table 1. Rates per zone", also in metadata `caption`); its metadata `table` names it
("table 2") and `location` says where it is ("page 3 › table 2"). The splitter
(retrievers.splitter) cuts such a section only between rows, so no chunk holds half a
row, and starts every piece with the caption; the header stays because every row carries it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.documents import Document

from retrievers.sections import section

__all__ = ["clean_cell", "looks_like_header", "row_line", "table_section"]

# A value, not a name: "4.50", "-3", "12 %", "1,024", "$9.90", "2.50 EUR", "n/a", "—".
_VALUE = re.compile(r"[-+−]?[$€£]?\s?\d[\d.,:/ ]*\s?(%|[A-Z]{3}|[a-zA-Z]{1,3})?|n/?a|[-–—]", re.IGNORECASE)
_MAX_HEADER_CELL = 60  # a longer cell is prose, not a column's name


def clean_cell(value: object) -> str:
    """A cell's text on one line ("" for an empty or missing cell)."""
    return " ".join(str(value).split()) if value is not None else ""


def looks_like_header(rows: Sequence[Sequence[str]]) -> bool:
    """Whether a table's first row names its columns: at least half of its cells filled,
    none a value (a number, an amount), none long, no two the same, and rows below it."""
    if len(rows) < 2 or not rows[0]:
        return False
    first = [cell for cell in rows[0] if cell]
    if len(first) * 2 < len(rows[0]) or len(set(first)) < len(first):
        return False
    return not any(_VALUE.fullmatch(cell) or len(cell) > _MAX_HEADER_CELL for cell in first)


def row_line(header: Sequence[str], cells: Sequence[str]) -> str:
    """ "Zone: 3; Rate: 4.50 EUR": each non-empty cell under its column's name; cells past
    the header are named by position ("column 5"), as CSV rows are."""
    names = [h or f"column {i}" for i, h in enumerate(header, start=1)]
    names += [f"column {i}" for i in range(len(names) + 1, len(cells) + 1)]
    return "; ".join(f"{name}: {cell}" for name, cell in zip(names, cells, strict=False) if cell)


def table_section(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    location: str,
    label: str,
    *,
    caption: str = "",
    **extra: object,
) -> Document | None:
    """One table as a section of row lines, after its caption line if it has one (None when
    no row holds anything)."""
    lines = [line for line in (row_line(header, row) for row in rows) if line]
    if not lines:
        return None
    caption = clean_cell(caption)
    if caption:
        return section("\n".join([caption, *lines]), location, table=label, caption=caption, **extra)
    return section("\n".join(lines), location, table=label, **extra)
