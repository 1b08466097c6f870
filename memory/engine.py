"""SQLAlchemy engines for the memory database, SQLite tuned for concurrent use.

SQLite gets WAL (readers never block the writer), a busy timeout (writers wait
instead of failing with "database is locked") and enforced foreign keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from assistant.errors import ConfigurationError

__all__ = ["create_memory_engine", "safe_url"]

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
        if parsed.database and parsed.database != ":memory:":
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
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigurationError(
            "database_url",
            f"no driver for {safe_url(url)} ({exc})",
            "Install the driver, e.g. psycopg for postgresql+psycopg://.",
        ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
