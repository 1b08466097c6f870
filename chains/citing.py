"""What a reply says besides the model's words: the decline message, the quoted evidence, the sources."""

from __future__ import annotations

from chains.evidence import Evidence
from chains.reply import Source
from chains.route import Decision
from retrievers.passage import Passage

__all__ = ["EXTRACTIVE_LEAD", "QUOTED_SENTENCES", "abstention", "cited", "evidence_tail"]


def abstention(collection: str, searched: str, passages: list[Passage]) -> str:
    """What was searched, that the documents do not answer it, and the nearest topics found."""
    nearest = list(dict.fromkeys(p.citation for p in passages))[:3]
    topics = "; ".join(nearest) if nearest else "nothing"
    return (
        f"I searched collection '{collection}' for “{searched}”, and its documents do not answer it, "
        f"so I won't guess. Nearest topics found: {topics}."
    )


def cited(passages: list[Passage], evidence: list[Evidence], decision: Decision) -> list[Source]:
    if decision.route == "abstain":
        return []
    # The large model cites passages as [n] in prompt order, so source n must be passage n there.
    # Otherwise the passage quoted as evidence comes first, then the others that reached the prompt.
    lead = [] if decision.route == "large" else [e.passage for e in evidence[:QUOTED_SENTENCES]]
    ordered = lead + passages
    unique = list({p.chunk_id: p for p in ordered}.values())
    return [Source(p.source, p.location, p.text[:300], round(p.score, 4), p.chunk_id) for p in unique]


# Shown when no sentence of the local draft is backed by the passages: the quotes that follow are the answer.
EXTRACTIVE_LEAD = "The documents say:"
QUOTED_SENTENCES = 2  # measured on the PostgreSQL questions: the quote holds the answer 0.61 of the time, 0.35 with one


def evidence_tail(evidence: list[Evidence], decision: Decision) -> str:
    """The best sentences, verbatim, each with its citation: the fact a reader can check."""
    if decision.route != "local" or not evidence:
        return ""
    return "\n\n" + "\n".join(f"> “{e.sentence}” — {e.passage.citation}" for e in evidence[:QUOTED_SENTENCES])
