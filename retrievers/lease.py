"""A collection's write lock: a lease in its catalog row, so that two processes (on one
host or many) never write one collection at the same time.

The holder renews it while it works; a lease whose process died on this host is
taken over at once, any other after it expires. An ingest renews it after every batch
of chunks written and while it waits for a file to be parsed, so a live writer never
loses it. How long one file keeps it is bounded by the per-file limits
(`max_file_chars`, `max_line_chars`): splitting is linear, and a file at the default
limit of 2 million characters is about 6,000 chunks, 3 to 8 minutes of embedding on
two cores (under the 10 minutes an upload waits for a busy collection).

One shape for every writer (ingest, reindex, delete):

    with lease.held(col) as holding:
        ...  # write
        holding.renew()  # after each batch
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import Connection, or_, select, update

from assistant.errors import CollectionBusyError
from memory.db import Database
from retrievers.catalog import CollectionRow
from retrievers.catalog_tables import collections

__all__ = ["LOCK_TTL_S", "CollectionLease", "Holding"]

LOCK_TTL_S = 600.0  # a crashed writer's lock expires after this (at once on the same host)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead(holder: str) -> bool:
    """Whether a lease's holder is a process of this host that no longer runs (it was killed)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid))


@dataclass(frozen=True)
class Holding:
    """A lease held: renew it while the work goes on (it is released when the `with` ends)."""

    lease: CollectionLease
    collection_id: int
    owner: str
    ttl_s: float

    def renew(self) -> None:
        self.lease.renew(self.collection_id, self.owner, self.ttl_s)


class CollectionLease:
    def __init__(self, db: Database, ttl_s: float = LOCK_TTL_S) -> None:
        self.db = db
        self.ttl_s = ttl_s

    @staticmethod
    def new_owner() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @contextmanager
    def held(self, col: CollectionRow) -> Iterator[Holding]:
        """The collection's write lock for the `with` block, or CollectionBusyError naming who holds it."""
        owner = self.new_owner()
        self.acquire(col, owner, self.ttl_s)
        try:
            yield Holding(self, col.id, owner, self.ttl_s)
        finally:
            self.release(col.id, owner)

    def acquire(self, col: CollectionRow, owner: str, ttl_s: float) -> None:
        """Take the collection's write lock or raise CollectionBusyError naming who holds it."""
        for _ in range(2):
            now = time.time()
            taken, holder, until = self.db.write_rows(
                partial(self._take, collection_id=col.id, owner=owner, now=now, ttl_s=ttl_s)
            )
            if taken:
                return
            if holder is None:  # its process is gone (killed): the lock was taken over, try again
                continue
            since = datetime.fromtimestamp(until - ttl_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            raise CollectionBusyError(col.name, holder, since)
        raise CollectionBusyError(col.name, "another process", "now")

    @staticmethod
    def _take(
        conn: Connection, collection_id: int, owner: str, now: float, ttl_s: float
    ) -> tuple[bool, str | None, float]:
        """(taken, who holds it otherwise or None once a dead holder's lock is cleared, until when)."""
        taken = conn.execute(
            update(collections)
            .where(
                collections.c.id == collection_id,
                or_(
                    collections.c.lock_owner.is_(None),
                    collections.c.lock_owner == owner,
                    collections.c.lock_until < now,
                ),
            )
            .values(lock_owner=owner, lock_until=now + ttl_s)
        ).rowcount
        if taken:
            return True, None, 0.0
        holder, until = conn.execute(
            select(collections.c.lock_owner, collections.c.lock_until).where(collections.c.id == collection_id)
        ).one()
        if _dead(str(holder)):
            # Its process is gone (killed): take the lock over now rather than at expiry.
            conn.execute(
                update(collections)
                .where(collections.c.id == collection_id, collections.c.lock_owner == holder)
                .values(lock_owner=None, lock_until=None)
            )
            return False, None, 0.0
        return False, str(holder), float(until)

    def renew(self, collection_id: int, owner: str, ttl_s: float) -> None:
        self.db.write_rows(
            lambda conn: conn.execute(
                update(collections)
                .where(collections.c.id == collection_id, collections.c.lock_owner == owner)
                .values(lock_until=time.time() + ttl_s)
            )
        )

    def holder(self, collection_id: int) -> str | None:
        """Who holds the collection's write lock now (None: nobody, a lease that expired, or a
        process of this host that was killed)."""
        owner, until = self.db.write_rows(
            lambda conn: conn.execute(
                select(collections.c.lock_owner, collections.c.lock_until).where(collections.c.id == collection_id)
            ).one()
        )
        if owner is None or until is None or until < time.time() or _dead(str(owner)):
            return None
        return str(owner)

    def release(self, collection_id: int, owner: str) -> None:
        self.db.write_rows(
            lambda conn: conn.execute(
                update(collections)
                .where(collections.c.id == collection_id, collections.c.lock_owner == owner)
                .values(lock_owner=None, lock_until=None, updated_at=datetime.now(UTC))
            )
        )
