"""API keys: each acts as one user; only a hash is stored; revoked keys stop at once.

A key is `ak_` followed by 32 random URL-safe characters. Being random and long, it
is stored as its SHA-256 (a slow password hash would add nothing but latency to
every request). A key has a role: "user" keys read every collection their user sees
and write their own; "admin" keys may also write every shared collection. Requests
are counted per key and minute in SQL, so that a limit holds across every replica
of the app.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from assistant.errors import InvalidInputError
from memory.db import Database
from memory.schema import ApiKey, ApiKeyUsage, utcnow

__all__ = ["KEY_PREFIX", "ROLES", "IssuedKey", "KeyInfo", "KeyStore"]

KEY_PREFIX = "ak_"
ROLES = ("user", "admin")
_SHOWN = 10  # characters of a key kept in clear, to tell keys apart in listings


@dataclass(frozen=True)
class KeyInfo:
    id: int
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    role: str = "user"  # one of ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedKey:
    info: KeyInfo
    secret: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.user_id, row.name, row.prefix, row.created_at, row.revoked_at, row.role)


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, user_id: str, name: str = "", role: str = "user") -> IssuedKey:
        if not user_id.strip():
            raise InvalidInputError("user", "is empty", "Name the user the key acts as: --user NAME.")
        if role not in ROLES:
            raise InvalidInputError(
                "role", f"must be one of {', '.join(ROLES)}, got {role!r}", "Use --role user or --role admin."
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(24)

        def work(db: Session) -> KeyInfo:
            row = ApiKey(user_id=user_id, name=name, prefix=secret[:_SHOWN], secret_hash=_hash(secret), role=role)
            db.add(row)
            db.flush()
            return _info(row)

        return IssuedKey(self.db.write(work), secret)

    def list(self, user_id: str | None = None) -> list[KeyInfo]:
        query = select(ApiKey).order_by(ApiKey.id)
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        with self.db.read() as db:
            return [_info(r) for r in db.scalars(query)]

    def revoke(self, key_id: int) -> bool:
        """Revoke a key by id; False if there is no such live key."""

        def work(db: Session) -> bool:
            done = db.execute(
                update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

        return self.db.write(work)

    def verify(self, secret: str) -> KeyInfo | None:
        """The live key with this secret, or None."""
        if not secret.startswith(KEY_PREFIX):
            return None
        with self.db.read() as db:
            row = db.scalar(select(ApiKey).where(ApiKey.secret_hash == _hash(secret), ApiKey.revoked_at.is_(None)))
            return _info(row) if row else None

    def count_request(self, key_id: int, now: float | None = None) -> int:
        """Count one request of this key in the current minute; the count so far, this one included."""
        minute = int((time.time() if now is None else now) // 60)

        def work(db: Session) -> int:
            # One statement, so that concurrent replicas never lose a count.
            count = db.execute(
                text(
                    "INSERT INTO api_key_usage (key_id, minute, requests) VALUES (:k, :m, 1) "
                    "ON CONFLICT (key_id, minute) DO UPDATE SET requests = api_key_usage.requests + 1 "
                    "RETURNING requests"
                ),
                {"k": key_id, "m": minute},
            ).scalar_one()
            db.execute(delete(ApiKeyUsage).where(ApiKeyUsage.key_id == key_id, ApiKeyUsage.minute < minute - 1))
            return int(count)

        return self.db.write(work)
