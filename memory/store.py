"""SQLMemory: the conversation store. It receives an engine and brings its schema up to date.

A turn (the question and its answer) is written in one transaction, so a session
never holds a question without its answer. Every read and write is scoped by the
user's id first: a session id alone never reaches another user's rows. Within a
session, messages are numbered 1, 2, 3... in the order their turns committed; the
session's row is locked while a turn is numbered, so concurrent writers to one
session queue instead of colliding.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from assistant.errors import InvalidInputError, UnknownSessionError
from memory.audit import EscalationLog, redact_session, redact_user
from memory.db import Database
from memory.facts import FactStore
from memory.keys import KeyStore
from memory.migrate import upgrade
from memory.ratings import RatingStore
from memory.records import (
    HistoryWindow,
    NewMessage,
    SessionInfo,
    StoredMessage,
    StoredSummary,
    TurnIds,
    UserDeletion,
    check_id,
    check_message,
)
from memory.schema import ChatSession, Message, SessionSummary, User, UserFact, utcnow

__all__ = ["SQLMemory"]


class SQLMemory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade(engine)
        self.db = Database(engine)
        self.facts = FactStore(self.db)
        self.escalations = EscalationLog(self.db)
        self.keys = KeyStore(self.db)
        self.ratings = RatingStore(self.db)

    # Writes -------------------------------------------------------------------------

    def add_turn(self, user_id: str, session_id: str, question: NewMessage, answer: NewMessage) -> TurnIds:
        """Store a question and its answer together, creating the user and session if new."""
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        question = check_message(question, "question")
        answer = check_message(answer, "answer")

        def work(db: Session) -> TurnIds:
            chat = self._get_or_create_session(db, user_id, session_id, title=question.content)
            last = self._lock_and_last_seq(db, chat.id)
            rows = [
                Message(session_id=chat.id, seq=last + n, **m.__dict__) for n, m in enumerate((question, answer), 1)
            ]
            db.add_all(rows)
            chat.updated_at = utcnow()
            db.flush()
            return TurnIds(question_id=rows[0].id, answer_id=rows[1].id, question_seq=rows[0].seq)

        return self.db.write(work)

    @staticmethod
    def _lock_and_last_seq(db: Session, chat_id: int) -> int:
        # FOR UPDATE on PostgreSQL: writers to one session queue here. SQLite ignores it; its
        # write transactions already start with BEGIN IMMEDIATE (one writer at a time).
        db.execute(select(ChatSession.id).where(ChatSession.id == chat_id).with_for_update())
        return SQLMemory._last_seq(db, chat_id)

    def _get_or_create_session(self, db: Session, user_id: str, session_id: str, title: str) -> ChatSession:
        user = self._get_or_create_user(db, user_id)
        chat = db.scalar(
            select(ChatSession).where(ChatSession.user_id == user.id, ChatSession.external_id == session_id)
        )
        if chat is None:
            chat = ChatSession(user_id=user.id, external_id=session_id, title=" ".join(title.split())[:200])
            db.add(chat)
            db.flush()
        return chat

    @staticmethod
    def _get_or_create_user(db: Session, user_id: str) -> User:
        user = db.scalar(select(User).where(User.external_id == user_id))
        if user is None:
            user = User(external_id=user_id)
            db.add(user)
            db.flush()
        return user

    def add_summary(self, user_id: str, session_id: str, summary: StoredSummary) -> None:
        """Record a rolling summary; a second summary of the same messages (another replica's) is dropped."""

        def work(db: Session) -> None:
            chat = self._find_session(db, user_id, session_id)
            exists = db.scalar(
                select(SessionSummary.id).where(
                    SessionSummary.session_id == chat.id, SessionSummary.through_seq == summary.through_seq
                )
            )
            if exists is None:
                db.add(SessionSummary(session_id=chat.id, **summary.__dict__))

        self.db.write(work)

    def delete_session(self, user_id: str, session_id: str) -> None:
        def work(db: Session) -> None:
            chat = self._find_session(db, user_id, session_id)
            db.execute(delete(SessionSummary).where(SessionSummary.session_id == chat.id))
            db.execute(delete(Message).where(Message.session_id == chat.id))
            db.execute(delete(ChatSession).where(ChatSession.id == chat.id))
            redact_session(db, user_id, session_id)

        self.db.write(work)

    def delete_user(self, user_id: str) -> UserDeletion:
        """Delete a user and everything of theirs: sessions, messages, summaries, facts."""

        def work(db: Session) -> UserDeletion:
            user = db.scalar(select(User).where(User.external_id == user_id))
            if user is None:
                raise UnknownSessionError(user_id, known_users=list(db.scalars(select(User.external_id))))
            sessions = select(ChatSession.id).where(ChatSession.user_id == user.id)
            counted = UserDeletion(
                sessions=db.scalar(select(func.count()).select_from(sessions.subquery())) or 0,
                messages=db.scalar(select(func.count(Message.id)).where(Message.session_id.in_(sessions))) or 0,
                facts=db.scalar(select(func.count(UserFact.id)).where(UserFact.user_id == user.id)) or 0,
            )
            # Explicit deletes, children first: correct even where foreign keys are not enforced.
            db.execute(delete(UserFact).where(UserFact.user_id == user.id))
            db.execute(delete(SessionSummary).where(SessionSummary.session_id.in_(sessions)))
            db.execute(delete(Message).where(Message.session_id.in_(sessions)))
            db.execute(delete(ChatSession).where(ChatSession.user_id == user.id))
            db.execute(delete(User).where(User.id == user.id))
            redact_user(db, user_id)
            return counted

        return self.db.write(work)

    # Reads --------------------------------------------------------------------------

    @staticmethod
    def _find_session(db: Session, user_id: str, session_id: str) -> ChatSession:
        chat = db.scalar(
            select(ChatSession).join(User).where(User.external_id == user_id, ChatSession.external_id == session_id)
        )
        if chat is None:
            raise SQLMemory._unknown_session(db, user_id, session_id)
        return chat

    @staticmethod
    def _unknown_session(db: Session, user_id: str, session_id: str) -> UnknownSessionError:
        """The error for a session not found, with the closest of the user's sessions (or of the users) in it."""
        user = db.scalar(select(User.id).where(User.external_id == user_id))
        if user is None:
            return UnknownSessionError(user_id, session_id, known_users=list(db.scalars(select(User.external_id))))
        ids = db.scalars(select(ChatSession.external_id).where(ChatSession.user_id == user))
        return UnknownSessionError(user_id, session_id, known_sessions=list(ids))

    @staticmethod
    def _session_pk(db: Session, user_id: str, session_id: str) -> int | None:
        return db.scalar(
            select(ChatSession.id).join(User).where(User.external_id == user_id, ChatSession.external_id == session_id)
        )

    def recent_messages(self, user_id: str, session_id: str, limit: int) -> list[StoredMessage]:
        """The last `limit` messages of a session, oldest first; [] for a new session."""
        return self.window(user_id, session_id, limit, 0).recent

    def window(self, user_id: str, session_id: str, recent: int, unsummarized: int) -> HistoryWindow:
        """The last `recent` messages, the newest summary, and up to `unsummarized` messages
        between the two. Its cost does not grow with the session's length."""
        with self.db.read() as db:
            chat_id = self._session_pk(db, user_id, session_id)
            if chat_id is None:
                return HistoryWindow([], None, [], 0)
            rows = (
                db.scalars(
                    select(Message).where(Message.session_id == chat_id).order_by(Message.seq.desc()).limit(recent)
                ).all()
                if recent > 0
                else []
            )
            window_start = rows[-1].seq if rows else (self._last_seq(db, chat_id) + 1)
            summary_row = db.scalars(
                select(SessionSummary)
                .where(SessionSummary.session_id == chat_id)
                .order_by(SessionSummary.through_seq.desc())
                .limit(1)
            ).first()
            covered = summary_row.through_seq if summary_row else 0
            gap = (Message.session_id == chat_id, Message.seq > covered, Message.seq < window_start)
            total = max(0, window_start - 1 - covered)  # seqs have no gaps within a session
            older = (
                db.scalars(select(Message).where(*gap).order_by(Message.seq.desc()).limit(unsummarized)).all()
                if unsummarized > 0 and total
                else []
            )
        return HistoryWindow(
            recent=[_stored(r) for r in reversed(rows)],
            summary=_summary(summary_row) if summary_row else None,
            unsummarized=[_stored(r) for r in reversed(older)],
            unsummarized_total=total,
        )

    @staticmethod
    def _last_seq(db: Session, chat_id: int) -> int:
        return db.scalar(select(func.max(Message.seq)).where(Message.session_id == chat_id)) or 0

    def messages(self, user_id: str, session_id: str) -> list[StoredMessage]:
        """The whole session, oldest first; UnknownSessionError if it does not exist."""
        with self.db.read() as db:
            chat = self._find_session(db, user_id, session_id)
            rows = db.scalars(select(Message).where(Message.session_id == chat.id).order_by(Message.seq)).all()
        return [_stored(row) for row in rows]

    def summaries(self, user_id: str, session_id: str) -> list[StoredSummary]:
        """Every rolling summary of a session, oldest first."""
        with self.db.read() as db:
            chat = self._find_session(db, user_id, session_id)
            rows = db.scalars(
                select(SessionSummary).where(SessionSummary.session_id == chat.id).order_by(SessionSummary.through_seq)
            ).all()
        return [_summary(row) for row in rows]

    def session_info(self, user_id: str, session_id: str) -> SessionInfo:
        with self.db.read() as db:
            chat = self._find_session(db, user_id, session_id)
            count = db.scalar(select(func.count(Message.id)).where(Message.session_id == chat.id)) or 0
        return SessionInfo(user_id, session_id, chat.title, chat.created_at, chat.updated_at, int(count))

    def sessions(self, user_id: str | None = None, *, limit: int | None = None) -> list[SessionInfo]:
        """Sessions of one user (or of everyone), most recently used first; `limit`: only the first so many."""
        counts = select(Message.session_id, func.count(Message.id).label("n")).group_by(Message.session_id).subquery()
        query = (
            select(ChatSession, User.external_id, func.coalesce(counts.c.n, 0))
            .join(User)
            .outerjoin(counts, counts.c.session_id == ChatSession.id)
            .order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
        )
        if user_id is not None:
            query = query.where(User.external_id == user_id)
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as db:
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

    def session_owners(self, session_id: str) -> list[str]:
        """The users who have a session with this id (ids are per user, so there may be several)."""
        query = (
            select(User.external_id)
            .join(ChatSession, ChatSession.user_id == User.id)
            .where(ChatSession.external_id == session_id)
            .order_by(User.external_id)
        )
        with self.db.read() as db:
            return list(db.scalars(query))

    def session_ids(self) -> list[str]:
        """Every session id in use, by any user (for suggesting the one meant)."""
        with self.db.read() as db:
            return list(db.scalars(select(ChatSession.external_id).distinct().order_by(ChatSession.external_id)))

    def users(self) -> list[str]:
        with self.db.read() as db:
            return list(db.scalars(select(User.external_id).order_by(User.external_id)))

    # Import (export is in memory.transfer) ----------------------------------------------

    def import_session(
        self,
        user_id: str,
        session_id: str,
        title: str,
        messages: list[tuple[NewMessage, datetime]],
        summaries: list[StoredSummary],
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Write a whole session in one transaction; refuses a session id already in use."""
        check_id("user_id", user_id)
        check_id("session_id", session_id)
        checked = [(check_message(m, f"messages[{i}]"), at) for i, (m, at) in enumerate(messages)]

        def work(db: Session) -> None:
            user = self._get_or_create_user(db, user_id)
            taken = db.scalar(
                select(ChatSession.id).where(ChatSession.user_id == user.id, ChatSession.external_id == session_id)
            )
            if taken is not None:
                raise InvalidInputError(
                    "session_id",
                    f"session {session_id!r} of user {user_id!r} already exists",
                    "Delete it first, or import under another session id.",
                )
            first = created_at or (checked[0][1] if checked else utcnow())
            chat = ChatSession(
                user_id=user.id,
                external_id=session_id,
                title=title[:200],
                created_at=first,
                updated_at=updated_at or (checked[-1][1] if checked else first),
            )
            db.add(chat)
            db.flush()
            db.add_all(
                Message(session_id=chat.id, seq=n, created_at=at, **m.__dict__)
                for n, (m, at) in enumerate(checked, start=1)
            )
            db.add_all(SessionSummary(session_id=chat.id, **s.__dict__) for s in summaries)

        self.db.write(work)


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
        id=row.id,
    )


def _summary(row: SessionSummary) -> StoredSummary:
    return StoredSummary(
        through_seq=row.through_seq,
        content=row.content,
        token_count=row.token_count,
        model=row.model,
        created_at=row.created_at,
    )
