"""Pick the sentences of the retrieved passages that best answer the question.

A 135M model misses facts buried in a passage; handed the few most relevant
sentences first it states them far more often, and the best one is quoted verbatim
under every answer so a reader can check the claim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from chains.untrusted import REMOVED
from retrievers.keywords import query_terms
from retrievers.passage import Passage
from retrievers.words import content_words, sentences

__all__ = ["Evidence", "cosine", "evidence_signals", "select_evidence"]

LEXICAL_WEIGHT = 0.3


@dataclass(frozen=True)
class Evidence:
    sentence: str
    passage: Passage
    score: float


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def select_evidence(
    question: str, passages: list[Passage], embeddings: Embeddings, *, limit: int = 3
) -> list[Evidence]:
    """The `limit` best sentences, scored by meaning and by the question's words they share."""
    # The marker of a planted line set aside (chains.untrusted) is never part of a quote.
    said = ((" ".join(s.replace(REMOVED, " ").split()), p) for p in passages for s in sentences(p.text))
    candidates = [(s, p) for s, p in said if len(s.split()) >= 4]
    if not candidates:
        return []
    wanted = set(content_words(question))
    vectors = embeddings.embed_documents([question, *(s for s, _ in candidates)])
    query = vectors[0]
    scored = []
    for (sentence, passage), vector in zip(candidates, vectors[1:], strict=True):
        overlap = len(wanted & set(content_words(sentence))) / len(wanted) if wanted else 0.0
        scored.append(Evidence(sentence, passage, cosine(query, vector) + LEXICAL_WEIGHT * overlap))
    scored.sort(key=lambda e: e.score, reverse=True)
    return scored[:limit]


def evidence_signals(question: str, evidence: list[Evidence], language: str) -> dict[str, float | None]:
    """How well the best evidence sentence matches the question: by meaning and words, and by words alone."""
    if not evidence:
        return {"evidence_score": None, "evidence_overlap": None}
    asked = set(query_terms(question, language))
    found = set(query_terms(evidence[0].sentence, language))
    return {
        "evidence_score": round(evidence[0].score, 4),
        "evidence_overlap": round(len(asked & found) / len(asked), 4) if asked else None,
    }
