"""What a turn recalls from memory: recent messages, the rolling summary, the user's facts.

Reads are bounded (a fixed number of indexed queries whatever the session's length).
When turns have left the window since the last summary, the summarizer folds them
into a new summary, stored in SQL; the messages themselves always stay in SQL. The
pipeline asks for that fold after each answer (`refresh_summary`, off the answer's
path), so the next turn usually finds it done; a turn that does not (its session's
last turn was answered by another process) folds before its prompt is built.
"""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.embeddings import Embeddings

from assistant.settings import MemorySettings
from chains.facts import recall_facts
from chains.summarize import Summarizer
from memory.facts import Fact
from memory.records import StoredMessage, StoredSummary
from memory.schema import utcnow
from memory.store import SQLMemory

__all__ = ["ConversationRecall"]

# A summary folds in at most this many of the newest messages that left the window (an
# imported session may have thousands; the summary then speaks for the newest of them).
SUMMARY_INPUT_MESSAGES = 8


class ConversationRecall:
    def __init__(
        self,
        memory: SQLMemory,
        settings: MemorySettings,
        *,
        summarizer: Summarizer | None,
        count_tokens: Callable[[str], int],
    ) -> None:
        self.memory = memory
        self.recent_messages = settings.history_turns
        self.summarizer = summarizer
        self.count_tokens = count_tokens
        self.use_facts = settings.remember_facts
        self.fact_min_similarity = settings.fact_min_similarity

    def history(self, user_id: str, session_id: str) -> tuple[list[StoredMessage], str]:
        """(the most recent messages, oldest first; the summary of what came before them, or "")."""
        window = self.memory.window(user_id, session_id, self.recent_messages, SUMMARY_INPUT_MESSAGES)
        summary = window.summary
        # A whole turn (question and answer) has left the window without being summarised.
        if self.summarizer is not None and window.unsummarized_total >= 2 and window.recent:
            text, model = self.summarizer.summarize(summary, window.unsummarized)
            summary = StoredSummary(
                through_seq=window.recent[0].seq - 1,
                content=text,
                token_count=self.count_tokens(text),
                model=model,
                created_at=utcnow(),
            )
            self.memory.add_summary(user_id, session_id, summary)
        return window.recent, summary.content if summary else ""

    def refresh_summary(self, user_id: str, session_id: str) -> None:
        """Fold the turns that have left the window into the summary, now rather than at the next turn."""
        self.history(user_id, session_id)

    def facts(self, user_id: str, question: str, embeddings: Embeddings) -> list[Fact]:
        """The user's preferences, and their facts that bear on the question."""
        if not self.use_facts:
            return []
        known = self.memory.facts.list(user_id, must_exist=False)
        return recall_facts(question, known, embeddings, min_similarity=self.fact_min_similarity)
