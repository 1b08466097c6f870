"""Conversations in SQL: users, sessions, messages, rolling summaries and user facts.

Imports SQLAlchemy, Alembic and the project's errors; never `chains` or `retrievers`.
"""

from memory.engine import create_memory_engine
from memory.facts import Fact, FactStore
from memory.store import HistoryWindow, NewMessage, SessionInfo, SQLMemory, StoredMessage, StoredSummary

__all__ = [
    "Fact",
    "FactStore",
    "HistoryWindow",
    "NewMessage",
    "SQLMemory",
    "SessionInfo",
    "StoredMessage",
    "StoredSummary",
    "create_memory_engine",
]
