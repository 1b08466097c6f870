"""People's ratings of answers: the turns to review, and the verdicts stored against them.

A turn is an assistant message and the user message just before it; its id is the
assistant message's. A reviewer rates a turn once: importing again replaces that
reviewer's rating, so a corrected spreadsheet can be imported as often as needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from memory.db import Database
from memory.schema import ChatSession, Message, TurnRating, User, utcnow

__all__ = ["RATINGS", "RatingStore", "ReviewTurn", "StoredRating"]

RATINGS = ("correct", "partly", "wrong")


@dataclass(frozen=True)
class ReviewTurn:
    turn_id: int
    user_id: str
    session_id: str
    question: str
    answer: str
    sources: list[dict[str, Any]]
    route: str
    reason: str
    model: str
    signals: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class StoredRating:
    turn_id: int
    reviewer: str
    rating: str
    grounded: bool | None
    comment: str
    created_at: datetime


class RatingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def turns(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        route: str | None = None,
        since: datetime | None = None,
        turn_ids: list[int] | None = None,
        unrated: bool = False,
        limit: int | None = None,
    ) -> list[ReviewTurn]:
        """Answered turns, oldest first, filtered as asked."""
        answer, question = Message, aliased(Message)
        query = (
            select(answer, question.content, User.external_id, ChatSession.external_id)
            .join(ChatSession, ChatSession.id == answer.session_id)
            .join(User, User.id == ChatSession.user_id)
            .join(question, and_(question.session_id == answer.session_id, question.seq == answer.seq - 1))
            .where(answer.role == "assistant")
            .order_by(answer.created_at, answer.id)
        )
        if user_id is not None:
            query = query.where(User.external_id == user_id)
        if session_id is not None:
            query = query.where(ChatSession.external_id == session_id)
        if route is not None:
            query = query.where(answer.route == route)
        if since is not None:
            query = query.where(answer.created_at >= since)
        if turn_ids is not None:
            query = query.where(answer.id.in_(turn_ids))
        if unrated:
            query = query.where(~select(TurnRating.id).where(TurnRating.message_id == answer.id).exists())
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as db:
            return [
                ReviewTurn(
                    turn_id=row.id,
                    user_id=user,
                    session_id=session,
                    question=asked,
                    answer=row.content,
                    sources=list(row.sources or []),
                    route=row.route or "",
                    reason=row.reason or "",
                    model=row.model or "",
                    signals=dict(row.signals or {}),
                    created_at=row.created_at,
                )
                for row, asked, user, session in db.execute(query).all()
            ]

    def existing_turns(self, turn_ids: list[int]) -> set[int]:
        with self.db.read() as db:
            found = db.scalars(select(Message.id).where(Message.id.in_(turn_ids), Message.role == "assistant"))
            return set(found)

    def rate(self, turn_id: int, reviewer: str, rating: str, grounded: bool | None, comment: str = "") -> None:
        """Store (or replace) one reviewer's rating of one turn."""
        if rating not in RATINGS:
            raise ValueError(f"rating {rating!r} is not one of {', '.join(RATINGS)}")

        def work(db: Session) -> None:
            row = db.scalar(select(TurnRating).where(TurnRating.message_id == turn_id, TurnRating.reviewer == reviewer))
            if row is None:
                db.add(
                    TurnRating(message_id=turn_id, reviewer=reviewer, rating=rating, grounded=grounded, comment=comment)
                )
            else:
                row.rating, row.grounded, row.comment, row.created_at = rating, grounded, comment, utcnow()

        self.db.write(work)

    def ratings(self, turn_ids: list[int] | None = None) -> list[StoredRating]:
        query = select(TurnRating).order_by(TurnRating.message_id, TurnRating.reviewer)
        if turn_ids is not None:
            query = query.where(TurnRating.message_id.in_(turn_ids))
        with self.db.read() as db:
            return [
                StoredRating(r.message_id, r.reviewer, r.rating, r.grounded, r.comment, r.created_at)
                for r in db.scalars(query)
            ]
