"""Conversations in SQL: users, sessions and messages through SQLAlchemy 2.0.

Imports SQLAlchemy and the project's errors; never `chains` or `retrievers`.
"""

from memory.engine import create_memory_engine
from memory.store import NewMessage, SessionInfo, SQLMemory, StoredMessage

__all__ = ["NewMessage", "SQLMemory", "SessionInfo", "StoredMessage", "create_memory_engine"]
