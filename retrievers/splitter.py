"""Split sections into chunks measured in the embedder's own tokens.

all-MiniLM-L6-v2 truncates at 256 tokens, so a chunk measured in characters can be
only half embedded. Each chunk is embedded as its heading path plus its body (the
pair stays under the embedder's limit); citations show the file too, but the file
name is left out of the embedded text: on the PostgreSQL manual it lowered hit@1
from 0.71 to 0.66 (benchmarks/bench_ingest.py), and without it a moved file's
vectors stay exactly right.

Splitting is linear in the text: the tokenizer never reads a piece longer than a
chunk could be, a run with no space or newline (a base64 blob, a minified file) is
cut into windows of at most one chunk rather than character by character, and line
numbers are counted on from the chunk before.

A table section (metadata `table`, retrievers.tables) is cut only between its rows,
whole rows packed up to the budget, and every piece starts with the table's caption
line when it has one: each row already names its columns, so every piece says what
table it is from and what its cells are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import PurePath
from typing import Any

from langchain_core.documents import Document
from langchain_text_splitters import RecursiveCharacterTextSplitter

from retrievers.sections import HEADING_SEPARATOR

__all__ = ["TokenSplitter", "chunk_title", "content_hash", "embedding_text"]

# No "" at the end: a run with none of these is cut into windows by TokenSplitter._windows.
_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " "]
# Text of this many characters per token of the budget is longer than any chunk: real
# text runs 1 to 6 characters a token. Only very long words (a tokenizer may read a word
# of 100+ letters as one unknown token) come close, and those are cut into windows.
_MAX_CHARS_PER_TOKEN = 16


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
            text = section.page_content
            first_line = section.metadata.get("line_start")
            line, counted = (int(first_line), 0) if first_line is not None else (0, 0)
            if "table" in section.metadata:
                pieces = self._table_pieces(text, str(section.metadata.get("caption") or ""), budget)
            else:
                pieces = self._pieces(text, budget)
            for start, piece in pieces:
                metadata = {k: v for k, v in section.metadata.items() if k != "line_start"}
                if first_line is not None:
                    line += text.count("\n", counted, start)  # starts only grow: linear in all
                    counted = start
                    metadata["line"] = line
                    if not metadata.get("location"):
                        metadata["location"] = f"line {line}"
                chunks.append(Document(page_content=piece, metadata={**metadata, "title": title}))
        return chunks

    def _pieces(self, text: str, budget: int) -> Iterator[tuple[int, str]]:
        """The chunks of one section's text, stripped, each with where it starts in `text`."""
        most_chars = budget * _MAX_CHARS_PER_TOKEN

        def length(piece: str) -> int:
            return self.count_tokens(piece) if len(piece) <= most_chars else budget + 1

        splitter = RecursiveCharacterTextSplitter(
            chunk_size=budget,
            chunk_overlap=min(self.overlap_tokens, budget // 2),
            length_function=length,
            separators=_SEPARATORS,
            keep_separator="end",
        )
        cursor = 0
        for piece in splitter.split_text(text):
            stripped = piece.strip()
            if not stripped:
                continue
            # A chunk starts after the one before it (they overlap, they never go back), and
            # close to it: searching from there finds it at once.
            found = text.find(stripped, cursor)
            start = found if found >= 0 else cursor
            cursor = start + 1
            if " " in stripped or "\n" in stripped or length(stripped) <= budget:
                yield start, stripped
            else:  # a run with nothing to split at, longer than a chunk
                for offset, window in self._windows(stripped, budget, most_chars):
                    yield start + offset, window
                cursor = start + len(stripped)

    def _table_pieces(self, text: str, caption: str, budget: int) -> Iterator[tuple[int, str]]:
        """A table's rows (its lines) packed whole into pieces of at most `budget` tokens,
        each piece after the caption line (when the text starts with it)."""
        lines = text.split("\n")
        starts = [0]
        for line in lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        head = caption if caption and lines[0] == caption else ""
        if head and self.count_tokens(head) > budget // 2:
            head = ""  # a runaway caption is a row like the others, not repeated
        first = 1 if head else 0
        room = budget - (self.count_tokens(head) + 1 if head else 0)
        rows: list[tuple[int, str, int]] = []
        for start, line in zip(starts[first:], lines[first:], strict=True):
            if not line.strip():
                continue
            # Counted a row at a time (the tokenizer reads each row once); a row's tokens
            # plus one for its newline bound its share of the joined piece.
            tokens = self.count_tokens(line) + 1
            if tokens <= room:
                rows.append((start, line, tokens))
                continue
            yield from self._packed(rows, head, room)
            rows = []
            # One row longer than a whole chunk cannot fit in any piece: the only cut inside
            # a row, made where the plain splitter cuts (between cells, at "; ", first), each
            # part still after the caption.
            for offset, part in self._pieces(line, room):
                yield start + offset, f"{head}\n{part}" if head else part
        yield from self._packed(rows, head, room)

    @staticmethod
    def _packed(rows: list[tuple[int, str, int]], head: str, room: int) -> Iterator[tuple[int, str]]:
        """Rows (start, text, tokens) packed whole into as few pieces of at most `room`
        tokens as fit them, evened out: 16 rows over two pieces go 8 and 8, not 13 and 3
        (a piece of a caption and three rows is mostly caption: in search it outranks the
        rest of its table whatever row is asked about). Pieces of half the chunk size or
        less found fewer rows first on benchmarks/bench_tables.py (0.73-0.80 against 0.87)."""
        if not rows:
            return
        count, used = 1, 0
        for _, _, tokens in rows:
            if used and used + tokens > room:
                count, used = count + 1, 0
            used += tokens
        target = sum(tokens for _, _, tokens in rows) / count
        piece: list[tuple[int, str, int]] = []
        used = 0
        for row in rows:
            tokens = row[2]
            # Cut at the row boundary nearest the even share, never past the room.
            if piece and (used + tokens > room or used + tokens / 2 > target):
                body = "\n".join(text for _, text, _ in piece)
                yield piece[0][0], f"{head}\n{body}" if head else body
                piece, used = [], 0
            piece.append(row)
            used += tokens
        body = "\n".join(text for _, text, _ in piece)
        yield piece[0][0], f"{head}\n{body}" if head else body

    def _windows(self, run: str, budget: int, most_chars: int) -> Iterator[tuple[int, str]]:
        """Consecutive windows of `run`, each of at most `budget` tokens and `most_chars` characters.

        Each window is first tried a quarter wider than the one before, so the tokenizer
        reads the run about twice in all, whatever its content."""
        at, width = 0, most_chars
        while at < len(run):
            width = min(most_chars, len(run) - at, width + width // 4 + 1)
            while width > 1 and (tokens := self.count_tokens(run[at : at + width])) > budget:
                width = max(1, min(width - 1, int(width * budget / tokens * 0.9)))
            window = run[at : at + width]
            if window.strip():
                yield at + len(window) - len(window.lstrip()), window.strip()
            at += width
