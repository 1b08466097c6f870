"""The database schema, versioned by Alembic: every table the framework keeps in SQL.

`upgrade(engine)` brings a database to the newest revision. SQLMemory and the
document catalog call it when they start, so a fresh database just works and an old
one is upgraded in place; `assistant db upgrade` does the same explicitly, and
`assistant db current` shows where a database stands.

Databases created before migrations existed (tables made directly, no
`alembic_version`) are recognised by the tables they hold, stamped with the
revision they match, then upgraded.

Processes that start together do not race: on PostgreSQL an advisory lock
serialises upgrades; on SQLite (one host by nature) a lock file beside the
database does.

Alembic is imported only when a database is behind: the head revision is read from
the revision files and a database's from its `alembic_version` row, so a process
whose database is up to date (the usual start) never loads it.
"""

from __future__ import annotations

import ast
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from assistant.errors import StoreUnavailableError
from memory.engine import describe_failure, safe_url

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x617373697374  # "assist": one key for the whole schema
# Tables that tell which revision a database made without Alembic is at, newest first.
_LEGACY_MARKERS = (("0002", {"messages", "collections"}), ("0001", {"messages"}))


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head_revision() -> str:
    """The newest revision: the one no other revision follows (read from the files, without Alembic)."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        values = {
            node.targets[0].id: node.value.value
            for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Constant)
        }
        down = values.get("down_revision")
        revisions[str(values["revision"])] = None if down is None else str(down)
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:
        raise RuntimeError(f"memory/migrations must have one head revision, found {sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with _unavailable_as_error(engine), engine.connect() as conn:
        return _current(conn)


def _current(conn: Connection) -> str | None:
    """What Alembic's MigrationContext.get_current_revision reads, without importing Alembic."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(versions) > 1:
        raise RuntimeError(f"the database has several schema heads {sorted(versions)}; this version has one")
    return versions[0] if versions else None


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Create or upgrade the schema; returns the revision reached."""
    target = head_revision() if revision == "head" else revision
    with _unavailable_as_error(engine):
        with engine.connect() as conn:
            if _current(conn) == target:  # the usual case: one query, no lock
                return target
        with _schema_lock(engine):
            with engine.connect() as conn:
                _stamp_legacy(conn)
                conn.commit()
            with engine.begin() as conn:
                from alembic import command

                command.upgrade(_config(conn), target)
    return target


def _stamp_legacy(conn: Connection) -> None:
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        return
    for revision, markers in _LEGACY_MARKERS:
        if markers <= tables:
            from alembic import command

            command.stamp(_config(conn), revision)
            return


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _ADVISORY_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _unavailable_as_error(engine: Engine) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        problem, fix = describe_failure(exc)
        raise StoreUnavailableError(f"database {safe_url(str(engine.url))}", problem, fix) from exc
    except OSError as exc:  # the SQLite lock file cannot be created
        raise StoreUnavailableError(
            f"database {safe_url(str(engine.url))}",
            f"cannot prepare its schema ({exc})",
            "Make the database's folder writable, or fix ASSISTANT_DATABASE_URL.",
        ) from exc
