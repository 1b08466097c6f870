"""Re-ranking the fused candidates: one small interface, one implementation.

Off by default: on our question sets no cross-encoder we could run offline beat
fusion within the latency target (see docs/benchmarks.md). Anyone with a sentence-transformers
`CrossEncoder` model directory sets `reranker_model` to use it; anything with a
`rerank(query, passages)` method can be passed to the index instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from assistant.errors import ConfigurationError
from retrievers.passage import Passage

__all__ = ["CrossEncoderReranker", "Reranker"]


class Reranker(Protocol):
    def rerank(self, query: str, passages: Sequence[Passage]) -> list[Passage]:
        """The passages, best first."""
        ...


class CrossEncoderReranker:
    """Scores (question, passage) pairs with a sentence-transformers CrossEncoder from a local folder.

    The original order breaks ties; `top_n` caps how many candidates are scored (latency)."""

    def __init__(self, path: Path, *, top_n: int = 20, batch_size: int = 16) -> None:
        if not path.is_dir():
            raise ConfigurationError(
                "reranker_model",
                f"{str(path)!r} is not a folder",
                "Point it at a sentence-transformers CrossEncoder model directory, or unset it.",
            )
        self.path = path
        self.top_n = top_n
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(str(self.path), device="cpu", local_files_only=True)
        return self._model

    def rerank(self, query: str, passages: Sequence[Passage]) -> list[Passage]:
        head, tail = list(passages[: self.top_n]), list(passages[self.top_n :])
        if not head:
            return tail
        scores = self._load().predict(
            [(query, p.text) for p in head], batch_size=self.batch_size, show_progress_bar=False
        )
        order = sorted(range(len(head)), key=lambda i: (-float(scores[i]), i))
        ranked = [replace(head[i], metadata={**head[i].metadata, "rerank_score": float(scores[i])}) for i in order]
        return ranked + tail
