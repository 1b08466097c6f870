"""What a turn returns: the answer, its sources, the route taken and why."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from chains.followups import AfterTurn

__all__ = ["STAGES", "FinishReason", "Reply", "ReplyChunk", "Route", "Source"]

Route = Literal["local", "large", "abstain"]
FinishReason = Literal["stop", "length"]
# What a turn is doing, announced before the slow parts: recall, condense and retrieve
# ("searching"), the local model generating ("thinking"), the large model called ("escalating").
STAGES = ("searching", "thinking", "escalating")


@dataclass(frozen=True)
class Source:
    file: str
    location: str
    snippet: str
    score: float
    chunk_id: str = ""

    @property
    def citation(self) -> str:
        return f"{self.file} › {self.location}" if self.location else self.file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Reply:
    answer: str
    sources: list[Source]
    route: Route
    reason: str
    model: str
    question: str
    standalone_question: str
    low_confidence: bool = False
    evidence: str = ""  # the sentence quoted from the top source, verbatim
    signals: dict[str, float | int | bool | None] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, completion_tokens
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    finish_reason: FinishReason = "stop"  # "length": the answering model stopped at the max_tokens cap
    user_id: str = ""  # whose conversation, which session and collection the turn was stored in
    session_id: str = ""
    collection: str = ""
    # The work that follows the answer (learning facts, the conversation summary), running
    # in the background; None when there was none.
    after: Future[AfterTurn] | None = field(default=None, repr=False, compare=False)

    @property
    def remembered(self) -> list[str]:
        """Facts about the user learned from this question. Learning follows the answer;
        this waits for it (usually long done by the time anyone looks)."""
        return list(self.after.result().remembered) if self.after is not None else []

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "after"}
        data["sources"] = [s.to_dict() for s in self.sources]
        return {**data, "remembered": self.remembered}


@dataclass(frozen=True)
class ReplyChunk:
    """A piece of a streamed answer; the last chunk carries the whole Reply.

    A chunk with a `stage` (one of STAGES) has no text and no reply: it says what the
    turn is doing next, so a caller can show progress; text-only consumers ignore it."""

    text: str
    reply: Reply | None = None
    stage: str | None = None
