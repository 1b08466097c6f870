"""Hybrid search: meaning (Chroma) and keywords (SQL) fused, then passages made readable.

1. Candidates: the `retrieval_candidates` nearest chunks by cosine, as many best by
   keywords (retrievers.keywords), and, when the question names identifiers (work_mem,
   40P01, --jobs), the chunks that hold all of them: an exact name is the strongest
   evidence a question has, and it is lost when a common word of the question ranks
   other chunks first in the plain keyword list.
2. Fusion, `fusion="score"` (the default): a chunk scores its cosine similarity plus
   keyword_weight × 3 / (2 + its keyword rank) plus identifier_weight when it holds every
   identifier. Measured on the PostgreSQL manual questions (benchmarks/bench_retrieval.py),
   this beat reciprocal rank fusion (`fusion="rrf"`, Σ weight × (rrf_k + 1) / (rrf_k + rank)), which
   throws away how close the best dense matches are: a keyword list's top ranks often
   belong to narrative pages that merely repeat the question's words.
   Then each chunk gains `source_support` × the scores of the next two best chunks of
   its source: a page that answers a question usually matches it in several places,
   and a stray sentence elsewhere in one.
3. Re-ranking (optional, retrievers.rerank) of the fused head.
4. Passages: each of the best `k` chunks grows by its neighbours in the same section
   (overlap removed) within a token budget, and a passage mostly contained in a better
   one is dropped.

Every passage keeps its cosine similarity to the question (`score`), computed for
keyword-only finds too, so relevance thresholds mean the same with or without keywords.
The `Retrieval` also carries what the router reads about whether the collection answers
the question at all: how the two lists agree and how much of the question was found.

This module holds the scoring and the result; retrievers.search runs one search with
them (settings: assistant.settings.RetrievalSettings).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from retrievers.keywords import document_terms
from retrievers.ledger import ChunkRow
from retrievers.passage import Passage

__all__ = ["Fusion", "Retrieval", "expand", "fuse", "max_fused", "near_duplicate", "supported"]

Fusion = Literal["score", "rrf"]
KEYWORD_RANK_DECAY = 3  # score fusion: the keyword list's rank r counts DECAY / (DECAY - 1 + r)


@dataclass
class Retrieval:
    """The outcome of one search: passages best first, and the evidence behind them."""

    query: str
    passages: list[Passage]
    dense: list[str] = field(default_factory=list)  # candidate chunk ids by meaning, best first
    keyword: list[str] = field(default_factory=list)  # candidate chunk ids by keywords, best first
    exact: list[str] = field(default_factory=list)  # chunks holding every identifier of the question
    terms: list[str] = field(default_factory=list)  # the question's keyword terms
    identifiers: list[str] = field(default_factory=list)  # those of them that are codes, options, names
    unknown: list[str] = field(default_factory=list)  # identifiers no chunk of the collection holds
    language: str = "none"
    max_fused: float = 0.0  # the fused score of a chunk ranked first in every list

    def signals(self) -> dict[str, float | None]:
        """What retrieval says about whether the collection answers the question; higher is likelier."""
        top = self.passages[0] if self.passages else None
        known = 1 - len(self.unknown) / len(self.identifiers) if self.identifiers else None
        return {
            "fused": round(top.fused / self.max_fused, 4) if top and self.max_fused else None,
            "agreement": self.agreement(),
            "coverage": self.coverage(),
            "coverage_top": self.coverage(depth=1),
            "identifiers_known": round(known, 4) if known is not None else None,
        }

    def agreement(self, depth: int = 5) -> float | None:
        """Share of the top `depth` chunks by meaning that are also in the top `depth` by keywords."""
        if not self.dense or not self.keyword:
            return None if not self.dense else 0.0
        return round(len(set(self.dense[:depth]) & set(self.keyword[:depth])) / depth, 4)

    def coverage(self, depth: int = 3) -> float | None:
        """Share of the question's terms found in the best `depth` passages."""
        if not self.terms:
            return None
        found: set[str] = set()
        for passage in self.passages[:depth]:
            found.update(document_terms(str(passage.metadata.get("heading", "")), passage.text, self.language))
        return round(sum(t in found for t in self.terms) / len(self.terms), 4)


def fuse(
    dense: Sequence[tuple[str, float]],
    keyword: Sequence[str],
    exact: Sequence[str],
    weights: tuple[float, float, float],
    fusion: Fusion,
    rrf_k: int,
) -> dict[str, float]:
    """Fused score of every candidate chunk. `dense` holds (id, cosine) for every candidate
    (keyword-only finds included), best first among those found by meaning."""
    scores: dict[str, float] = {}
    dense_weight, keyword_weight, identifier_weight = weights
    if fusion == "score":
        for chunk_id, cosine in dense:
            scores[chunk_id] = dense_weight * cosine
        ranked = [(keyword, keyword_weight, KEYWORD_RANK_DECAY - 1)]
    else:
        ranked = [([i for i, _ in dense], dense_weight, rrf_k), (keyword, keyword_weight, rrf_k)]
    for ids, weight, k in ranked:
        for rank, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * (k + 1) / (k + rank)
    for chunk_id in exact:
        scores[chunk_id] = scores.get(chunk_id, 0.0) + identifier_weight
    return scores


def supported(scores: Mapping[str, float], source_of: Mapping[str, str], support: float) -> list[tuple[str, float]]:
    """(id, score) best first, each score raised by `support` × its source's next two best scores."""
    by_source: dict[str, list[float]] = {}
    for chunk_id, score in scores.items():
        by_source.setdefault(source_of.get(chunk_id, chunk_id), []).append(score)
    for values in by_source.values():
        values.sort(reverse=True)
    out = []
    for chunk_id, score in scores.items():
        others = list(by_source[source_of.get(chunk_id, chunk_id)])
        others.remove(score)
        out.append((chunk_id, score + support * sum(others[:2])))
    return sorted(out, key=lambda item: item[1], reverse=True)


_WORDS = re.compile(r"\w+")


def _words(value: str) -> set[str]:
    return set(_WORDS.findall(value.lower()))


def near_duplicate(passage: Passage, kept: Sequence[Passage], threshold: float) -> bool:
    """True when `threshold` of the passage's words are already in one kept passage."""
    if threshold >= 1:
        return False
    mine = _words(passage.text)
    if not mine:
        return True
    return any(len(mine & _words(other.text)) / len(mine) >= threshold for other in kept)


def _join(left: str, right: str) -> str:
    """Two consecutive chunks as one text, the overlap the splitter gave them written once."""
    longest = min(len(left), len(right))
    for size in range(longest, 15, -1):
        if left.endswith(right[:size]):
            return left + right[size:]
    probe = right[:40]
    at = left.find(probe) if len(probe) >= 16 else -1
    if at >= 0 and right.startswith(left[at:]):
        return left[:at] + right
    return f"{left}\n{right}"


def expand(
    passage: Passage, around: list[ChunkRow], count_tokens: Callable[[str], int], budget: int
) -> tuple[Passage, set[str]]:
    """The passage grown by neighbours of its section, nearest first, within `budget` tokens.

    Returns the passage and the ids of the chunks it now holds."""
    section = _section(passage.metadata)
    same = [c for c in around if _section(c.meta) == section]
    index = next((i for i, c in enumerate(same) if c.id == passage.chunk_id), None)
    if index is None:
        return passage, {passage.chunk_id}
    lo = hi = index
    text = passage.text
    held = {passage.chunk_id}
    while True:
        grown = False
        for step, edge in ((hi + 1, hi), (lo - 1, lo)):  # after first: a hit usually introduces what follows
            if not 0 <= step < len(same) or abs(same[step].seq - same[edge].seq) != 1:
                continue
            candidate = _join(text, same[step].text) if step > hi else _join(same[step].text, text)
            if count_tokens(candidate) > budget:
                continue
            text, grown = candidate, True
            held.add(same[step].id)
            lo, hi = min(lo, step), max(hi, step)
        if not grown:
            break
    if text == passage.text:
        return passage, held
    return replace(passage, text=text, metadata={**passage.metadata, "expanded": len(held)}), held


def _section(meta: Mapping[str, object]) -> tuple[object, object]:
    """What a chunk's citation points at: its heading, and its location unless that is just the
    chunk's own line number (a page or a row is its own section)."""
    location = meta.get("location")
    if "line" in meta and location == f"line {meta['line']}":
        location = None
    return meta.get("heading"), location


def max_fused(weights: Sequence[float]) -> float:
    """The fused score of a chunk ranked first everywhere (with a cosine of 1), before source support."""
    return sum(w for w in weights if w > 0) or math.inf
