"""Tables as sections: each row written with its header, so a row found alone still says
what its cells are ("Zone: 3; Rate: 4.50 EUR; Days: 2").

A table becomes one section whose lines are its rows; its metadata `table` names it
("table 2") and `location` says where it is ("page 3 › table 2"). The splitter
(retrievers.splitter) cuts such a section only between rows, so no chunk holds half
a row, and every piece keeps the header because every row carries it.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.documents import Document

from retrievers.sections import section

__all__ = ["clean_cell", "row_line", "table_section"]


def clean_cell(value: object) -> str:
    """A cell's text on one line ("" for an empty or missing cell)."""
    return " ".join(str(value).split()) if value is not None else ""


def row_line(header: Sequence[str], cells: Sequence[str]) -> str:
    """ "Zone: 3; Rate: 4.50 EUR": each non-empty cell under its column's name; cells past
    the header are named by position ("column 5"), as CSV rows are."""
    names = [h or f"column {i}" for i, h in enumerate(header, start=1)]
    names += [f"column {i}" for i in range(len(names) + 1, len(cells) + 1)]
    return "; ".join(f"{name}: {cell}" for name, cell in zip(names, cells, strict=False) if cell)


def table_section(
    header: Sequence[str], rows: Sequence[Sequence[str]], location: str, label: str, **extra: object
) -> Document | None:
    """One table as a section of row lines (None when no row holds anything)."""
    lines = [line for line in (row_line(header, row) for row in rows) if line]
    if not lines:
        return None
    return section("\n".join(lines), location, table=label, **extra)
