"""Transactions on the memory database, with the errors users see when they fail.

`write(work)` runs `work` in one transaction that either commits whole or leaves
nothing behind. It is retried when it met another writer (a lock held past the busy
timeout, a deadlock, a unique key taken by a concurrent insert), with backoff,
until a deadline; what still fails becomes a StoreUnavailableError naming the
database and what to do. "database is locked" never reaches the caller raw.

memory/ works with ORM sessions (`read`, `write`); the document catalog
(retrievers/) with Core connections (`read_rows`, `write_rows`), under the same
retry and the same errors. Imports nothing from retrievers/ or chains/.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, InternalError, OperationalError
from sqlalchemy.exc import ProgrammingError as SQLProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from assistant.errors import StoreUnavailableError
from memory.engine import describe_failure, is_transient, safe_url, write_transaction

__all__ = ["Database"]

log = logging.getLogger(__name__)
T = TypeVar("T")
WRITE_DEADLINE_S = 120.0
_CONFLICT_ATTEMPTS = 8
# Failures of the database itself (unreachable, read-only, locked, missing a table); a
# DataError or IntegrityError is about the values written and is not one of them.
_STORE_FAILURES = (OperationalError, InterfaceError, InternalError, SQLProgrammingError)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def name(self) -> str:
        return f"database {safe_url(str(self.engine.url))}"

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.unavailable_as_error(), self._sessions() as db:
            yield db

    @contextmanager
    def read_rows(self) -> Iterator[Connection]:
        """A Core connection for reads, its failures as StoreUnavailableError."""
        with self.unavailable_as_error(), self.engine.connect() as conn:
            yield conn

    def write(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with write_transaction(self.engine) as conn, Session(bind=conn, expire_on_commit=False) as db:
                result = work(db)
                db.flush()
            return result

        return self._retrying(run, _CONFLICT_ATTEMPTS)

    def write_rows(self, work: Callable[[Connection], T]) -> T:
        """`write` on a Core connection. A unique key taken is the caller's to handle (a
        collection's name exists), not a conflict to retry: the IntegrityError is raised."""

        def run() -> T:
            with write_transaction(self.engine) as conn:
                return work(conn)

        return self._retrying(run, 1)

    def _retrying(self, run: Callable[[], T], conflict_attempts: int) -> T:
        deadline = time.monotonic() + WRITE_DEADLINE_S
        conflicts = 0
        delay = 0.02
        while True:
            try:
                return run()
            except IntegrityError:
                # Two writers created the same user or session, or took the same sequence number.
                conflicts += 1
                if conflicts >= conflict_attempts:
                    raise
                log.debug("write conflict, retrying (%d)", conflicts)
            except DBAPIError as exc:
                if not is_transient(exc) or time.monotonic() + delay > deadline:
                    if isinstance(exc, _STORE_FAILURES):
                        raise self._as_error(exc) from exc
                    raise  # a data or constraint error is ours or the caller's, not the database's
                log.debug("database busy (%s), retrying in %.2fs", exc.orig, delay)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    @contextmanager
    def unavailable_as_error(self) -> Iterator[None]:
        try:
            yield
        except _STORE_FAILURES as exc:
            raise self._as_error(exc) from exc

    def _as_error(self, exc: DBAPIError) -> StoreUnavailableError:
        problem, fix = describe_failure(exc)
        return StoreUnavailableError(self.name, problem, fix)
