"""Self-contained HTML reports: tables and matplotlib figures embedded as PNG data URIs.

A report opens offline from a file or a CI artifact: no script, font or image is
fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Page", "Section", "Table", "figure", "render"]

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .8rem 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; margin: .5rem 0; } .note { color: #555; } .flag { color: #b00020; font-weight: 600; }
details { margin: .5rem 0; } pre { white-space: pre-wrap; margin: 0; font: inherit; }
"""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Section:
    heading: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # data URIs
    details: Table | None = None  # a long table, folded


@dataclass
class Page:
    title: str
    subtitle: str
    sections: list[Section]


def figure(fig: Any) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell(value: Any) -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, bool):
        return f"<td>{'yes' if value else 'no'}</td>"
    if isinstance(value, int | float):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f'<td class="num">{shown}</td>'
    return f"<td><pre>{html.escape(str(value))}</pre></td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(page: Page) -> str:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(page.title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(page.title)}</h1><p class='note'>{html.escape(page.subtitle)}</p>",
    ]
    for section in page.sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts.extend(f"<p>{html.escape(note)}</p>" for note in section.notes)
        parts.extend(_table(t) for t in section.tables)
        parts.extend(f"<img alt='{html.escape(section.heading)}' src='{uri}'>" for uri in section.figures)
        if section.details is not None:
            parts.append(f"<details><summary>every row ({len(section.details.rows)})</summary>")
            parts.append(_table(section.details) + "</details>")
    parts.append("</body></html>")
    return "\n".join(parts)
