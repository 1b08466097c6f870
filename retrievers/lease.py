"""A collection's write lock: a lease in its catalog row, so that two processes (on one
host or many) never write one collection at the same time.

The holder renews it while it works; a lease whose process died on this host is
taken over at once, any other after it expires.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, or_, select, update

from assistant.errors import CollectionBusyError
from retrievers.catalog_tables import collections

if TYPE_CHECKING:
    from retrievers.catalog import CollectionRow

__all__ = ["CollectionLease"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CollectionLease:
    def __init__(self, transaction: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._tx = transaction

    @staticmethod
    def new_owner() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self, col: CollectionRow, owner: str, ttl_s: float) -> None:
        """Take the collection's write lock or raise CollectionBusyError naming who holds it."""
        for _ in range(2):
            now = time.time()
            with self._tx() as conn:
                taken = conn.execute(
                    update(collections)
                    .where(
                        collections.c.id == col.id,
                        or_(
                            collections.c.lock_owner.is_(None),
                            collections.c.lock_owner == owner,
                            collections.c.lock_until < now,
                        ),
                    )
                    .values(lock_owner=owner, lock_until=now + ttl_s)
                ).rowcount
                if taken:
                    return
                holder, until = conn.execute(
                    select(collections.c.lock_owner, collections.c.lock_until).where(collections.c.id == col.id)
                ).one()
                host, _, rest = str(holder).partition(":")
                pid = rest.partition(":")[0]
                if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
                    # Its process is gone (killed): take the lock over now rather than at expiry.
                    conn.execute(
                        update(collections)
                        .where(collections.c.id == col.id, collections.c.lock_owner == holder)
                        .values(lock_owner=None, lock_until=None)
                    )
                    continue
            since = datetime.fromtimestamp(until - ttl_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            raise CollectionBusyError(col.name, str(holder), since)
        raise CollectionBusyError(col.name, "another process", "now")

    def renew(self, collection_id: int, owner: str, ttl_s: float) -> None:
        with self._tx() as conn:
            conn.execute(
                update(collections)
                .where(collections.c.id == collection_id, collections.c.lock_owner == owner)
                .values(lock_until=time.time() + ttl_s)
            )

    def release(self, collection_id: int, owner: str) -> None:
        with self._tx() as conn:
            conn.execute(
                update(collections)
                .where(collections.c.id == collection_id, collections.c.lock_owner == owner)
                .values(lock_owner=None, lock_until=None, updated_at=datetime.now(UTC))
            )
