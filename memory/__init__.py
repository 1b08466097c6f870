"""Conversations in SQL: users, sessions, messages, rolling summaries and user facts,
plus the other shared state (API keys, the escalation audit, ratings). Imports SQLAlchemy,
Alembic and the project's errors; never `chains` or `retrievers`.

    store       SQLMemory: turns, sessions, summaries, users (records: its value types and input checks)
    db          one transaction helper with retry, shared with retrievers' catalog
    engine      engines for SQLite and PostgreSQL, and what their failures mean to users
    schema      the tables; migrate + migrations/ bring a database up to date (Alembic)
    facts       what users told us about themselves
    audit       every large-model call: what was sent, where, at what cost; budgets count from it
    keys        API keys of the HTTP server and their roles
    ratings     people's ratings of answered turns
    transfer    export and import of a session
"""

from memory.engine import create_memory_engine
from memory.facts import Fact, FactStore
from memory.records import HistoryWindow, NewMessage, SessionInfo, StoredMessage, StoredSummary
from memory.store import SQLMemory

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
