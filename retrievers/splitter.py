"""Split sections into chunks measured in the embedder's own tokens.

all-MiniLM-L6-v2 truncates at 256 tokens, so a chunk measured in characters can be
only half embedded. Each chunk is embedded as its heading path plus its body (the
pair stays under the embedder's limit); citations show the file too, but the file
name is left out of the embedded text: on the PostgreSQL manual it lowered hit@1
from 0.71 to 0.66 (benchmarks/bench_ingest.py), and without it a moved file's
vectors stay exactly right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from retrievers.loaders import HEADING_SEPARATOR

__all__ = ["TokenSplitter", "chunk_title", "content_hash", "embedding_text"]

_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_title(source: str, heading: str) -> str:
    return f"{source}{HEADING_SEPARATOR}{heading}" if heading else source


def _embedded_heading(source: str, heading: str) -> str:
    return heading or PurePath(source).stem


def embedding_text(meta: Mapping[str, Any], text: str) -> str:
    """What the embedder sees of a chunk: its heading path (or file stem, without one) and body."""
    return f"{_embedded_heading(str(meta.get('source', '')), str(meta.get('heading', '')))}\n{text}"


class TokenSplitter:
    """Chunks of at most `chunk_tokens` (title included) with `overlap_tokens` of overlap."""

    def __init__(
        self,
        count_tokens: Callable[[str], int],
        *,
        chunk_tokens: int,
        overlap_tokens: int,
        max_tokens: int,
    ) -> None:
        self.count_tokens = count_tokens
        self.chunk_tokens = min(chunk_tokens, max_tokens)
        self.overlap_tokens = min(overlap_tokens, chunk_tokens // 2)
        self.max_tokens = max_tokens

    def _fit_title(self, title: str) -> str:
        """A title takes at most half a chunk; a runaway heading is cut, never the body."""
        while self.count_tokens(title) > self.chunk_tokens // 2 and len(title) > 8:
            title = title[: int(len(title) * 0.8)].rstrip() + "…"
        return title

    def split(self, sections: list[Document], source: str) -> list[Document]:
        chunks: list[Document] = []
        for section in sections:
            heading = str(section.metadata.get("heading", ""))
            title = self._fit_title(chunk_title(source, heading))
            # The heading is embedded with every chunk, so it comes out of the body's budget.
            embedded = self._fit_title(_embedded_heading(source, heading))
            budget = max(16, self.chunk_tokens - self.count_tokens(embedded))
            splitter = RecursiveCharacterTextSplitter(
                chunk_size=budget,
                chunk_overlap=min(self.overlap_tokens, budget // 2),
                length_function=self.count_tokens,
                separators=_SEPARATORS,
                keep_separator="end",
                add_start_index=True,
            )
            for piece in splitter.split_documents([section]):
                text = piece.page_content.strip()
                if not text:
                    continue
                metadata = dict(section.metadata)
                start = int(piece.metadata.get("start_index", 0))
                if "line_start" in metadata:
                    line = int(metadata.pop("line_start")) + section.page_content.count("\n", 0, start)
                    metadata["line"] = line
                    if not metadata.get("location"):
                        metadata["location"] = f"line {line}"
                chunks.append(Document(page_content=text, metadata={**metadata, "title": title}))
        return chunks
