"""The escalation audit: every call to the large model, what was sent, where and when.

Budgets are counted from the same rows, so every replica sharing the database
sees the same spend. Days are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from memory.db import Database
from memory.schema import Escalation, utcnow

__all__ = ["EscalationLog", "EscalationRecord", "NewEscalation", "Spend"]


@dataclass(frozen=True)
class NewEscalation:
    user_id: str | None
    session_id: str | None
    collection: str
    endpoint: str
    model: str
    reason: str
    request: dict[str, Any]  # exactly what was sent: {"messages": [...], plus call options}
    status: str  # "ok" or "failed"
    attempts: int
    prompt_tokens: int
    completion_tokens: int
    duration_ms: float
    error: str | None = None


@dataclass(frozen=True)
class EscalationRecord(NewEscalation):
    id: int = 0
    created_at: datetime | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class Spend:
    """Successful large-model calls and their tokens, in one scope."""

    calls: int
    tokens: int


class EscalationLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, entry: NewEscalation) -> int:
        def work(db: Session) -> int:
            row = Escalation(**entry.__dict__, created_at=utcnow())
            db.add(row)
            db.flush()
            return row.id

        return self.db.write(work)

    def link(self, escalation_ids: list[int], message_id: int) -> None:
        """Attach calls to the answer message they produced (or that replaced them)."""
        if not escalation_ids:
            return

        def work(db: Session) -> None:
            db.execute(update(Escalation).where(Escalation.id.in_(escalation_ids)).values(message_id=message_id))

        self.db.write(work)

    def spend(self, *, user_id: str | None = None, session_id: str | None = None, day: bool = False) -> Spend:
        """Spend of a user's session (all time), of a user today, or of everyone today (no ids)."""
        conditions: list[ColumnElement[bool]] = [Escalation.status == "ok"]
        if user_id is not None:
            conditions.append(Escalation.user_id == user_id)
        if session_id is not None:
            conditions.append(Escalation.session_id == session_id)
        if day:
            conditions.append(Escalation.created_at >= start_of_day())

        with self.db.read() as db:
            calls, tokens = db.execute(
                select(
                    func.count(Escalation.id),
                    func.coalesce(func.sum(Escalation.prompt_tokens + Escalation.completion_tokens), 0),
                ).where(and_(*conditions))
            ).one()
        return Spend(int(calls), int(tokens))

    def list(
        self, *, user_id: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[EscalationRecord]:
        """Most recent first."""
        query = select(Escalation).order_by(Escalation.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(Escalation.user_id == user_id)
        if session_id is not None:
            query = query.where(Escalation.session_id == session_id)

        with self.db.read() as db:
            return [_record(row) for row in db.scalars(query)]


def redact_session(db: Session, user_id: str, session_id: str) -> None:
    """Within a session deletion: forget what was sent, keep what it cost."""
    db.execute(
        update(Escalation)
        .where(Escalation.user_id == user_id, Escalation.session_id == session_id)
        .values(request=None, error=None)
    )


def redact_user(db: Session, user_id: str) -> None:
    """Within a user deletion: the rows keep only their cost, for the day's total."""
    db.execute(
        update(Escalation)
        .where(Escalation.user_id == user_id)
        .values(request=None, error=None, user_id=None, session_id=None)
    )


def start_of_day(now: datetime | None = None) -> datetime:
    now = (now or utcnow()).astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def _record(row: Escalation) -> EscalationRecord:
    return EscalationRecord(
        id=row.id,
        created_at=row.created_at,
        message_id=row.message_id,
        user_id=row.user_id,
        session_id=row.session_id,
        collection=row.collection,
        endpoint=row.endpoint,
        model=row.model,
        reason=row.reason,
        request=row.request or {},
        status=row.status,
        attempts=row.attempts,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        duration_ms=row.duration_ms,
        error=row.error,
    )
