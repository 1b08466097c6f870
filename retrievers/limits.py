"""What one document's parsed text must be before it is split: storable and within bounds.

`clean_sections` makes the text and metadata of every section storable (no NUL, no
lone surrogate); `check_size` refuses a document over `max_file_chars` or with a line
over `max_line_chars`, naming the file, the limit, the value seen and the fix, so that
one file's work is bounded (the splitter, the embedder and the collection's lock).
"""

from __future__ import annotations

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from assistant.text import storable

__all__ = ["check_size", "clean_sections"]


def clean_sections(sections: list[Document]) -> list[Document]:
    """Sections whose text and metadata every store and tokenizer take: no NUL characters
    (PostgreSQL refuses them), no lone surrogates (nothing encodes them)."""
    return [
        Document(
            page_content=storable(s.page_content),
            metadata={k: storable(v) if isinstance(v, str) else v for k, v in s.metadata.items()},
        )
        for s in sections
    ]


def check_size(source: str, sections: list[Document], options: DocumentSettings) -> None:
    """Refuse a document whose text is over the limits, naming the file, the limit and the fix."""
    total = sum(len(s.page_content) for s in sections)
    if total > options.max_file_chars:
        raise InputFileError(
            source,
            f"holds {total:,} characters of text, over the limit of {options.max_file_chars:,}; "
            f"split it into smaller files, or raise ASSISTANT_MAX_FILE_CHARS",
        )
    for section in sections:
        text = section.page_content
        if len(text) <= options.max_line_chars:
            continue
        start, longest, at = 0, 0, 0
        while start <= len(text):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end
            if end - start > longest:
                longest, at = end - start, start
            start = end + 1
        if longest > options.max_line_chars:
            where = str(section.metadata.get("location") or "")
            line = section.metadata.get("line_start")
            if isinstance(line, int):
                where = f"line {line + text.count(chr(10), 0, at)}"
            raise InputFileError(
                source,
                f"has a line of {longest:,} characters{f' ({where})' if where else ''}, over the limit of "
                f"{options.max_line_chars:,}; break it into lines, or raise ASSISTANT_MAX_LINE_CHARS",
            )
