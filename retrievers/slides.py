"""PPTX slide decks to sections: one per slide, cited as "slide N › <title>", holding its
title, the text of its shapes (grouped shapes too) and its speaker notes; each table on
a slide is a section of its own ("slide N › table K"), rows written with their header,
so the splitter cuts it only between rows. See retrievers.loaders."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.sections import HEADING_SEPARATOR, section
from retrievers.sheets import office_mismatch
from retrievers.tables import clean_cell, table_section

__all__ = ["parse_pptx"]


def _shapes(shapes: Any) -> Iterator[Any]:
    """Every shape, those inside groups included, in the slide's order."""
    for shape in shapes:
        if getattr(shape, "shape_type", None) is not None and hasattr(shape, "shapes"):
            yield from _shapes(shape.shapes)  # a group
        else:
            yield shape


def _text(frame: Any) -> str:
    lines = (" ".join(paragraph.text.split()) for paragraph in frame.paragraphs)
    return "\n".join(line for line in lines if line)


def parse_pptx(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    import zipfile

    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    if error := office_mismatch(path, data, "PPTX", "PowerPoint"):
        raise error
    try:
        deck = Presentation(io.BytesIO(data))
        slides = list(deck.slides)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise InputFileError(str(path), f"is not a readable PPTX ({exc}); re-save it from PowerPoint") from None
    sections: list[Document] = []
    for number, slide in enumerate(slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        where = f"slide {number}{HEADING_SEPARATOR}{title}" if title else f"slide {number}"
        lines = [title] if title else []
        tables: list[Document] = []
        for shape in _shapes(slide.shapes):
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                rows = [[clean_cell(cell.text) for cell in row.cells] for row in shape.table.rows]
                label = f"table {len(tables) + 1}"
                location = f"{where}{HEADING_SEPARATOR}{label}"
                table = table_section(rows[0] if rows else [], rows[1:], location, label, heading=title, slide=number)
                if table is not None:
                    tables.append(table)
            elif getattr(shape, "has_text_frame", False) and (text := _text(shape.text_frame)):
                lines.append(text)
        notes_frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
        if notes_frame is not None and (spoken := _text(notes_frame)):
            lines.append(f"Speaker notes: {spoken}")
        # A slide holding only its title and tables: its tables carry the title already.
        if lines and not (tables and lines == [title]):
            sections.append(section("\n".join(lines), where, heading=title, slide=number))
        sections.extend(tables)
    return sections
