"""SQLAlchemy engines for the memory database, SQLite tuned for concurrent use.

SQLite gets WAL (readers never block the writer), a busy timeout (writers wait
instead of failing with "database is locked") and enforced foreign keys. Its
transactions are begun by us rather than by the sqlite3 module, so that a write
transaction can start with BEGIN IMMEDIATE: it takes the write lock up front (waiting
for it under the busy timeout) instead of upgrading a read lock later, which SQLite
refuses at once, busy timeout or not, when another writer committed meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from assistant.errors import ConfigurationError

__all__ = ["create_memory_engine", "describe_failure", "is_transient", "safe_url", "write_transaction"]

BUSY_TIMEOUT_MS = 30_000


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def create_memory_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "database_url",
            f"{url!r} is not a SQLAlchemy URL",
            "Use sqlite:///path.db or postgresql+psycopg://user@host/db.",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    "data_dir",
                    f"cannot create the database folder {str(folder)!r} ({exc.strerror or exc})",
                    "Point ASSISTANT_DATA_DIR (or ASSISTANT_DATABASE_URL) at a writable folder.",
                ) from None
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            "database_url",
            f"no driver for {safe_url(url)} ({exc})",
            "Install the driver, e.g. psycopg for postgresql+psycopg://.",
        ) from None


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it holds the write lock from its start."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


def is_transient(exc: DBAPIError) -> bool:
    """A failure that the same statement may not meet again: a lock, a lost connection."""
    message = str(exc.orig).lower()
    return exc.connection_invalidated or any(
        word in message for word in ("database is locked", "database is busy", "deadlock detected")
    )


def describe_failure(exc: DBAPIError) -> tuple[str, str]:
    """(what went wrong, what to do) for a database error, in words a user can act on."""
    message = " ".join(str(exc.orig).split())
    lowered = message.lower()
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return (
            f"is read-only ({message})",
            "Make it writable (file permissions, mount, or the server's default_transaction_read_only), "
            "or point ASSISTANT_DATABASE_URL at a writable database.",
        )
    if "locked" in lowered or "busy" in lowered:
        return (
            f"stayed locked by other writers for too long ({message})",
            "Retry; if many processes share it, use PostgreSQL (ASSISTANT_DATABASE_URL=postgresql+psycopg://...).",
        )
    if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
        return (f"lacks a table this version needs ({message})", "Run: assistant db upgrade")
    return (
        f"cannot be used ({message})",
        "Check that it is running, reachable and writable, or fix ASSISTANT_DATABASE_URL.",
    )


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("sqlite_immediate")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
