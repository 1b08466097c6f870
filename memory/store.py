"""SQLMemory: the conversation store. It receives an engine and creates its schema.

A turn (the question and its answer) is written in one transaction, so a session
never holds a question without its answer. Every read and write is scoped by the
user's id first: a session id alone never reaches another user's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from assistant.errors import InvalidQuestionError, StoreUnavailableError, UnknownSessionError
from memory.engine import safe_url
from memory.schema import Base, ChatSession, Message, User, utcnow

__all__ = ["NewMessage", "SQLMemory", "SessionInfo", "StoredMessage", "check_id"]

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ID_LENGTH = 255
_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class NewMessage:
    role: str
    content: str
    token_count: int = 0
    route: str | None = None
    model: str | None = None
    reason: str | None = None
    sources: list[dict[str, Any]] | None = None
    signals: dict[str, Any] | None = None


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    role: str
    content: str
    token_count: int
    created_at: datetime
    route: str | None = None
    model: str | None = None
    reason: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionInfo:
    user_id: str
    session_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int


def check_id(kind: str, value: str) -> str:
    if not value or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise InvalidQuestionError(f"{kind} must be 1 to {MAX_ID_LENGTH} characters, got {value!r}")
    return value


class SQLMemory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        with self._guard():
            Base.metadata.create_all(engine)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreUnavailableError(
                f"database {safe_url(str(self.engine.url))}",
                f"cannot be used ({exc.orig})",
                "Check that it is running, reachable and writable, or fix ASSISTANT_DATABASE_URL.",
            ) from exc

    def _run(self, work: Callable[[Session], T]) -> T:
        """One transaction; retried when a concurrent writer took the same sequence number."""
        for attempt in range(_WRITE_ATTEMPTS):
            with self._guard(), self._sessions() as db:
                try:
                    with db.begin():
                        return work(db)
                except IntegrityError:
                    if attempt == _WRITE_ATTEMPTS - 1:
                        raise
                    log.debug("write conflict, retrying (attempt %d)", attempt + 1)
        raise AssertionError("unreachable")

    # Writes -------------------------------------------------------------------------

    def add_turn(self, user_id: str, session_id: str, question: NewMessage, answer: NewMessage) -> None:
        """Store a question and its answer together, creating the user and session if new."""
        check_id("user_id", user_id)
        check_id("session_id", session_id)

        def work(db: Session) -> None:
            chat = self._get_or_create_session(db, user_id, session_id, title=question.content)
            last = db.scalar(select(func.max(Message.seq)).where(Message.session_id == chat.id)) or 0
            for offset, message in enumerate((question, answer), start=1):
                db.add(Message(session_id=chat.id, seq=last + offset, **message.__dict__))
            chat.updated_at = utcnow()

        self._run(work)

    def _get_or_create_session(self, db: Session, user_id: str, session_id: str, title: str) -> ChatSession:
        user = db.scalar(select(User).where(User.external_id == user_id))
        if user is None:
            user = User(external_id=user_id)
            db.add(user)
            db.flush()
        chat = db.scalar(
            select(ChatSession).where(ChatSession.user_id == user.id, ChatSession.external_id == session_id)
        )
        if chat is None:
            chat = ChatSession(user_id=user.id, external_id=session_id, title=" ".join(title.split())[:200])
            db.add(chat)
            db.flush()
        return chat

    def delete_session(self, user_id: str, session_id: str) -> None:
        def work(db: Session) -> None:
            chat = self._find_session(db, user_id, session_id)
            db.execute(delete(Message).where(Message.session_id == chat.id))
            db.delete(chat)

        self._run(work)

    # Reads --------------------------------------------------------------------------

    def _find_session(self, db: Session, user_id: str, session_id: str) -> ChatSession:
        chat = db.scalar(
            select(ChatSession).join(User).where(User.external_id == user_id, ChatSession.external_id == session_id)
        )
        if chat is None:
            raise UnknownSessionError(user_id, session_id)
        return chat

    def recent_messages(self, user_id: str, session_id: str, limit: int) -> list[StoredMessage]:
        """The last `limit` messages of a session, oldest first; [] for a new session."""
        if limit <= 0:
            return []
        with self._guard(), self._sessions() as db:
            rows = db.scalars(
                select(Message)
                .join(ChatSession)
                .join(User)
                .where(User.external_id == user_id, ChatSession.external_id == session_id)
                .order_by(Message.seq.desc())
                .limit(limit)
            ).all()
        return [_stored(row) for row in reversed(rows)]

    def messages(self, user_id: str, session_id: str) -> list[StoredMessage]:
        """The whole session, oldest first; UnknownSessionError if it does not exist."""
        with self._guard(), self._sessions() as db:
            chat = self._find_session(db, user_id, session_id)
            rows = db.scalars(select(Message).where(Message.session_id == chat.id).order_by(Message.seq)).all()
        return [_stored(row) for row in rows]

    def sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        """Sessions of one user (or of everyone), most recently used first."""
        counts = select(Message.session_id, func.count(Message.id).label("n")).group_by(Message.session_id).subquery()
        query = (
            select(ChatSession, User.external_id, func.coalesce(counts.c.n, 0))
            .join(User)
            .outerjoin(counts, counts.c.session_id == ChatSession.id)
            .order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
        )
        if user_id is not None:
            query = query.where(User.external_id == user_id)
        with self._guard(), self._sessions() as db:
            rows = db.execute(query).all()
        return [
            SessionInfo(
                user_id=owner,
                session_id=chat.external_id,
                title=chat.title,
                created_at=chat.created_at,
                updated_at=chat.updated_at,
                message_count=int(count),
            )
            for chat, owner, count in rows
        ]


def _stored(row: Message) -> StoredMessage:
    return StoredMessage(
        seq=row.seq,
        role=row.role,
        content=row.content,
        token_count=row.token_count,
        created_at=row.created_at,
        route=row.route,
        model=row.model,
        reason=row.reason,
        sources=list(row.sources or []),
        signals=dict(row.signals or {}),
    )
