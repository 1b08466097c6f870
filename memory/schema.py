"""The memory tables as ORM classes: users own sessions and facts, sessions own
ordered messages and rolling summaries.

Sessions are named by the caller, per user: two users may both have a session
"s1" and still never share a row. The tables are created and changed only by the
Alembic revisions in memory/migrations; a test checks the two agree. Every text
column is a StoredString or StoredText: what reaches the database has no NUL and no
lone surrogate, whatever wrote it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from assistant.text import storable

__all__ = [
    "ApiKey",
    "ApiKeyUsage",
    "Base",
    "ChatSession",
    "Escalation",
    "Message",
    "SessionSummary",
    "StoredString",
    "StoredText",
    "TurnRating",
    "User",
    "UserFact",
]


class StoredString(TypeDecorator[str]):
    """A String column whose values pass through `storable` on their way to the database.

    The API refuses NUL and lone surrogates in what callers send (memory.store.check_text);
    this is the guard for the text nobody typed: a model's answer, an extracted fact, an
    imported session, a value compared in a query."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return storable(value) if isinstance(value, str) else value


class StoredText(StoredString):
    impl = Text
    cache_ok = True  # read from each class's own body, not inherited


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(StoredString(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    sessions: Mapped[list[ChatSession]] = relationship(back_populates="user", cascade="all, delete-orphan")
    facts: Mapped[list[UserFact]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ChatSession(Base):
    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("user_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(StoredString(255))
    title: Mapped[str] = mapped_column(StoredString(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship(back_populates="sessions")
    messages: Mapped[list[Message]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="Message.seq"
    )
    summaries: Mapped[list[SessionSummary]] = relationship(back_populates="session", cascade="all, delete-orphan")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(StoredString(16))  # "user" or "assistant"
    content: Mapped[str] = mapped_column(StoredText)
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    route: Mapped[str | None] = mapped_column(StoredString(16), nullable=True)
    model: Mapped[str | None] = mapped_column(StoredString(255), nullable=True)
    reason: Mapped[str | None] = mapped_column(StoredText, nullable=True)
    sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    signals: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    session: Mapped[ChatSession] = relationship(back_populates="messages")


class SessionSummary(Base):
    """What the messages up to `through_seq` said, written when they left the prompt's window."""

    __tablename__ = "session_summaries"
    __table_args__ = (UniqueConstraint("session_id", "through_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    through_seq: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(StoredText)
    token_count: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(StoredString(255))  # the model that wrote it, or "extractive"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    session: Mapped[ChatSession] = relationship(back_populates="summaries")


class UserFact(Base):
    """Something a user said about themselves ("fact") or about how to answer ("preference")."""

    __tablename__ = "user_facts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(StoredString(16))
    content: Mapped[str] = mapped_column(StoredText)
    source_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), nullable=True)
    quote: Mapped[str] = mapped_column(StoredText)  # the user's words it came from, kept if the session goes
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user: Mapped[User] = relationship(back_populates="facts")


class Escalation(Base):
    """One call to the large model: exactly what was sent, where, when, and how it went.

    User and session are external ids, not foreign keys: deleting a session redacts
    its rows (`request` emptied) but keeps their counts, so budgets cannot be reset
    by deleting sessions; deleting a user also clears the ids.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_created_at", "created_at"),
        Index("ix_escalations_user", "user_id", "session_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user_id: Mapped[str | None] = mapped_column(StoredString(255), nullable=True)
    session_id: Mapped[str | None] = mapped_column(StoredString(255), nullable=True)
    collection: Mapped[str] = mapped_column(StoredString(512))
    endpoint: Mapped[str] = mapped_column(StoredText)  # base URL, or the chat model's class for one passed in
    model: Mapped[str] = mapped_column(StoredString(255))
    reason: Mapped[str] = mapped_column(StoredText)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # None once redacted
    status: Mapped[str] = mapped_column(StoredString(16))  # "ok" or "failed"
    error: Mapped[str | None] = mapped_column(StoredText, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), nullable=True)


class ApiKey(Base):
    """A key of the HTTP API: it acts as one user. Only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(StoredString(255), index=True)  # external user id, as in every API call
    name: Mapped[str] = mapped_column(StoredString(200), default="")
    prefix: Mapped[str] = mapped_column(StoredString(16))  # the key's first characters, to tell keys apart
    secret_hash: Mapped[str] = mapped_column(StoredString(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # What the key may do beyond reading: "admin" may also change every shared collection.
    role: Mapped[str] = mapped_column(StoredString(16), default="user", server_default="user")


class ApiKeyUsage(Base):
    """Requests per key per minute, counted in SQL so that every replica sees the same count."""

    __tablename__ = "api_key_usage"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)  # Unix time // 60
    requests: Mapped[int] = mapped_column(Integer, default=0)


class TurnRating(Base):
    """A person's verdict on one answer (an assistant message), from `assistant eval review import`."""

    __tablename__ = "turn_ratings"
    __table_args__ = (UniqueConstraint("message_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    reviewer: Mapped[str] = mapped_column(StoredString(255))
    rating: Mapped[str] = mapped_column(StoredString(16))  # "correct", "partly" or "wrong"
    grounded: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    comment: Mapped[str] = mapped_column(StoredText, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
