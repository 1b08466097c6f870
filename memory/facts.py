"""Long-term user memory: facts and preferences each user stated, kept per user.

Each fact keeps the user's own words it came from (`quote`) and, while it exists,
the message they were said in. Every call names the user, and a fact id of another
user is "not found": there is no way to reach someone else's facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from assistant.errors import InvalidInputError, UnknownFactError, UnknownSessionError
from memory.db import Database
from memory.schema import ChatSession, Message, User, UserFact, utcnow

__all__ = ["FACT_KINDS", "MAX_FACTS_PER_USER", "MAX_FACT_CHARS", "Fact", "FactStore"]

FACT_KINDS = ("fact", "preference")
MAX_FACT_CHARS = 300
MAX_FACTS_PER_USER = 200


@dataclass(frozen=True)
class Fact:
    id: int
    kind: str
    content: str
    quote: str
    session_id: str | None  # the session it was said in, while that session exists
    created_at: datetime
    updated_at: datetime


def _normalized(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".!")


def _check(kind: str, content: str) -> str:
    if kind not in FACT_KINDS:
        raise InvalidInputError("fact kind", f"must be one of {', '.join(FACT_KINDS)}, got {kind!r}")
    text = " ".join(str(content).split())
    if not text:
        raise InvalidInputError("fact", "is empty", "Give the fact's text.")
    if len(text) > MAX_FACT_CHARS:
        raise InvalidInputError("fact", f"has {len(text)} characters; the limit is {MAX_FACT_CHARS}", "Shorten it.")
    return text


class FactStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, user_id: str, kind: str, content: str, *, quote: str = "", source_message_id: int | None = None
    ) -> Fact:
        """Store a fact (creating the user if new); the same fact stated again is refreshed, not duplicated.

        Past MAX_FACTS_PER_USER, the least recently stated fact is dropped.
        """
        text = _check(kind, content)

        def work(db: Session) -> int:
            user = db.scalar(select(User).where(User.external_id == user_id))
            if user is None:
                user = User(external_id=user_id)
                db.add(user)
                db.flush()
            for fact in db.scalars(select(UserFact).where(UserFact.user_id == user.id, UserFact.kind == kind)):
                if _normalized(fact.content) == _normalized(text):
                    fact.updated_at = utcnow()
                    if source_message_id is not None:
                        fact.source_message_id, fact.quote = source_message_id, quote[:1000]
                    return fact.id
            row = UserFact(
                user_id=user.id, kind=kind, content=text, quote=quote[:1000], source_message_id=source_message_id
            )
            db.add(row)
            db.flush()
            count = db.scalar(select(func.count(UserFact.id)).where(UserFact.user_id == user.id)) or 0
            if count > MAX_FACTS_PER_USER:
                oldest = (
                    select(UserFact.id).where(UserFact.user_id == user.id).order_by(UserFact.updated_at, UserFact.id)
                )
                db.execute(delete(UserFact).where(UserFact.id.in_(oldest.limit(count - MAX_FACTS_PER_USER))))
            return row.id

        fact_id = self.db.write(work)
        return self.get(user_id, fact_id)

    def list(self, user_id: str, *, must_exist: bool = True) -> list[Fact]:
        """The user's facts, most recently stated first."""
        with self.db.read() as db:
            user_pk = db.scalar(select(User.id).where(User.external_id == user_id))
            if user_pk is None:
                if must_exist:
                    raise UnknownSessionError(user_id)
                return []
            rows = db.execute(self._query().where(UserFact.user_id == user_pk)).all()
        return [_fact(row[0], row[1]) for row in rows]

    def get(self, user_id: str, fact_id: int) -> Fact:
        with self.db.read() as db:
            row = db.execute(
                self._query()
                .join(User, User.id == UserFact.user_id)
                .where(User.external_id == user_id, UserFact.id == fact_id)
            ).first()
        if row is None:
            raise UnknownFactError(user_id, fact_id)
        return _fact(row[0], row[1])

    def edit(self, user_id: str, fact_id: int, content: str | None = None, kind: str | None = None) -> Fact:
        def work(db: Session) -> None:
            fact = self._owned(db, user_id, fact_id)
            new_kind = kind or fact.kind
            fact.content = _check(new_kind, content if content is not None else fact.content)
            fact.kind = new_kind
            fact.updated_at = utcnow()

        self.db.write(work)
        return self.get(user_id, fact_id)

    def forget(self, user_id: str, fact_id: int) -> None:
        def work(db: Session) -> None:
            db.delete(self._owned(db, user_id, fact_id))

        self.db.write(work)

    def forget_all(self, user_id: str) -> int:
        def work(db: Session) -> int:
            user_pk = db.scalar(select(User.id).where(User.external_id == user_id))
            if user_pk is None:
                raise UnknownSessionError(user_id)
            count = db.scalar(select(func.count(UserFact.id)).where(UserFact.user_id == user_pk)) or 0
            db.execute(delete(UserFact).where(UserFact.user_id == user_pk))
            return count

        return self.db.write(work)

    @staticmethod
    def _owned(db: Session, user_id: str, fact_id: int) -> UserFact:
        fact = db.scalar(select(UserFact).join(User).where(User.external_id == user_id, UserFact.id == fact_id))
        if fact is None:
            raise UnknownFactError(user_id, fact_id)
        return fact

    @staticmethod
    def _query() -> Select[UserFact, str]:
        return (
            select(UserFact, ChatSession.external_id)
            .outerjoin(Message, Message.id == UserFact.source_message_id)
            .outerjoin(ChatSession, ChatSession.id == Message.session_id)
            .order_by(UserFact.updated_at.desc(), UserFact.id.desc())
        )


def _fact(row: UserFact, session_id: str | None) -> Fact:
    return Fact(
        id=row.id,
        kind=row.kind,
        content=row.content,
        quote=row.quote,
        session_id=session_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
