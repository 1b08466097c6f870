"""A retrieved passage: the unit that reaches prompts and citations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document

__all__ = ["Passage"]


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    text: str
    source: str  # the file as shown to people, relative to the folder that was ingested
    location: str  # heading path, "page 3" or "line 12"; "" when the file has no structure
    score: float  # cosine similarity to the question, in [-1, 1]
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)
    fused: float = 0.0  # reciprocal-rank-fusion score (hybrid search); 0 when not fused
    dense_rank: int | None = None  # 1-based rank among the candidates by meaning; None: not among them
    keyword_rank: int | None = None  # 1-based rank among the candidates by keywords; None: not among them

    @property
    def title(self) -> str:
        return str(self.metadata.get("title") or self.source)

    @property
    def citation(self) -> str:
        return f"{self.source} › {self.location}" if self.location else self.source

    def to_document(self) -> Document:
        return Document(
            page_content=self.text,
            id=self.chunk_id,
            metadata={
                **self.metadata,
                "source": self.source,
                "location": self.location,
                "score": self.score,
                "fused": self.fused,
                "dense_rank": self.dense_rank,
                "keyword_rank": self.keyword_rank,
            },
        )
