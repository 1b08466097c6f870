"""Rolling summaries: what the turns that left the prompt's window said, in a few sentences.

The local model writes the summary from the previous summary and the turns that
just left the window. Its text is checked (not empty, not a copy of the
instruction, about the conversation, not too long); when a small model fails that
check, an extractive summary (the questions the user asked) takes its place, so a
summary is always written and old turns are never dropped without a trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from memory.records import StoredMessage, StoredSummary
from retrievers.words import content_words, leading_sentences

__all__ = ["EXTRACTIVE", "Summarizer"]

log = logging.getLogger(__name__)
EXTRACTIVE = "extractive"
_SYSTEM = (
    "Summarize the conversation in one or two sentences: what the user asked about and the key facts "
    "of the answers. Output only the summary."
)
_QUOTE_TAIL = re.compile(r"\n\n> “.*$", re.DOTALL)  # the verbatim evidence line under local answers
_MESSAGE_CHARS = 400


class Summarizer:
    def __init__(self, llm: BaseChatModel | None, count_tokens: Callable[[str], int], max_tokens: int = 100) -> None:
        self.llm = llm
        self.count = count_tokens
        self.max_tokens = max_tokens

    def summarize(self, previous: StoredSummary | None, messages: Sequence[StoredMessage]) -> tuple[str, str]:
        """(summary text, the model that wrote it or "extractive")."""
        transcript = "\n".join(f"{_speaker(m)}: {_clip(_QUOTE_TAIL.sub('', m.content))}" for m in messages)
        if self.llm is not None:
            earlier = f"Earlier: {previous.content}\n\n" if previous else ""
            reply = self.llm.invoke(
                [SystemMessage(_SYSTEM), HumanMessage(f"{earlier}Conversation:\n{transcript}")],
                max_tokens=self.max_tokens,
                stop=["\n\n"],
            )
            text = " ".join(reply.text.split())
            if _acceptable(text, transcript):
                return self._fit(text), str(getattr(self.llm, "model_name", "") or type(self.llm).__name__)
            log.debug("summary rejected: %r", text)
        return self._fit(_extractive(previous, messages)), EXTRACTIVE

    def _fit(self, text: str) -> str:
        """Whole sentences within the token budget (the newest questions kept for an extractive one)."""
        if self.count(text) <= self.max_tokens:
            return text
        return " ".join(leading_sentences(text, self.max_tokens, self.count)) or text[: self.max_tokens * 3]


def _speaker(message: StoredMessage) -> str:
    return "User" if message.role == "user" else "Assistant"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS].rsplit(" ", 1)[0] + " …"


def _acceptable(summary: str, transcript: str) -> bool:
    if len(summary.split()) < 4 or len(summary) > 800:
        return False
    if "summarize" in summary.lower() or "output only" in summary.lower():
        return False  # the instruction echoed back
    return bool(set(content_words(summary)) & set(content_words(transcript)))


def _extractive(previous: StoredSummary | None, messages: Sequence[StoredMessage]) -> str:
    asked = [str(m.signals.get("standalone_question") or m.content) for m in messages if m.role == "user"]
    earlier = previous.content.removeprefix("The user asked: ").rstrip(".") if previous else ""
    questions = "; ".join(q.rstrip("?. ") for q in [earlier, *asked] if q)
    # Newest last; when the budget is tight, _fit's sentence cut would keep the oldest, so keep it short here.
    return f"The user asked: {questions[-600:].lstrip('; ')}."
