"""Conversations in SQL: users, sessions, messages, rolling summaries and user facts,
plus the other shared state (API keys, the escalation audit, ratings). Imports SQLAlchemy,
Alembic (only to migrate) and the project's errors; never `chains` or `retrievers`. The
names below resolve on first use (PEP 562): importing one module of the package, such as
`memory.records`, imports no other.

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

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.lazy import lazy_exports

if TYPE_CHECKING:
    from memory.engine import create_memory_engine
    from memory.facts import Fact, FactStore
    from memory.records import HistoryWindow, NewMessage, SessionInfo, StoredMessage, StoredSummary
    from memory.store import SQLMemory

_WHERE = {
    "create_memory_engine": "memory.engine",
    "Fact": "memory.facts",
    "FactStore": "memory.facts",
    "HistoryWindow": "memory.records",
    "NewMessage": "memory.records",
    "SessionInfo": "memory.records",
    "StoredMessage": "memory.records",
    "StoredSummary": "memory.records",
    "SQLMemory": "memory.store",
}

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


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
