"""What the conversation store takes and gives: messages, summaries, sessions, and the
checks every caller's text and ids pass before they are stored."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assistant.errors import InvalidInputError

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_MESSAGE_CHARS",
    "HistoryWindow",
    "NewMessage",
    "SessionInfo",
    "StoredMessage",
    "StoredSummary",
    "TurnIds",
    "UserDeletion",
    "check_id",
    "check_message",
    "check_text",
    "new_session_id",
]

MAX_ID_LENGTH = 255
_UNUSABLE = re.compile("[\x00\ud800-\udfff]")
MAX_MESSAGE_CHARS = 32_000
ROLES = ("user", "assistant")


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
    id: int = 0


@dataclass(frozen=True)
class StoredSummary:
    through_seq: int  # the last message it covers
    content: str
    token_count: int
    model: str
    created_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    user_id: str
    session_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int


@dataclass(frozen=True)
class TurnIds:
    question_id: int
    answer_id: int
    question_seq: int


@dataclass(frozen=True)
class HistoryWindow:
    """What a prompt may draw on from one session, read in a fixed number of indexed queries.

    `recent`: the last messages, oldest first. `summary`: the newest summary, covering
    messages up to its `through_seq`. `unsummarized`: the newest messages between the
    summary and `recent` (at most the limit asked), which left the window without
    being summarised yet; `unsummarized_total` counts all of them.
    """

    recent: list[StoredMessage]
    summary: StoredSummary | None
    unsummarized: list[StoredMessage]
    unsummarized_total: int


@dataclass(frozen=True)
class UserDeletion:
    sessions: int
    messages: int
    facts: int


def new_session_id() -> str:
    """A fresh session id such as 20261130-081512-3fa2b1c9: local time to the second (so ids
    sort by when they began), then random hex (so calls in the same second never share one)."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


def check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(kind, f"must be 1 to {MAX_ID_LENGTH} characters, got {value!r}")
    return value


def check_message(message: NewMessage, what: str = "message") -> NewMessage:
    if message.role not in ROLES:
        raise InvalidInputError(f"{what} role", f"must be one of {', '.join(ROLES)}, got {message.role!r}")
    if not isinstance(message.content, str):
        raise InvalidInputError(f"{what} content", f"must be text, got {type(message.content).__name__}")
    if len(message.content) > MAX_MESSAGE_CHARS:
        raise InvalidInputError(
            f"{what} content",
            f"has {len(message.content)} characters; the limit is {MAX_MESSAGE_CHARS}",
            "Shorten it or split it into several messages.",
        )
    return message  # NUL and lone surrogates are removed on the way in (assistant.text.storable)


def check_text(what: str, value: str) -> str:
    """`value`, if it is text a caller may send us; otherwise an InvalidInputError naming `what`.

    Refused, not repaired, so that the caller learns of it: a NUL character (PostgreSQL
    cannot store one) and a lone UTF-16 surrogate (not Unicode: "\\ud800" in JSON)."""
    if not isinstance(value, str):
        raise InvalidInputError(what, f"must be text, got {type(value).__name__}")
    found = _UNUSABLE.search(value)
    if found is None:
        return value
    if found.group() == "\x00":
        raise InvalidInputError(
            what, f"holds a NUL character (U+0000) at position {found.start()}", "Remove it and send the text again."
        )
    raise InvalidInputError(
        what,
        f"holds a lone surrogate (U+{ord(found.group()):04X}) at position {found.start()}, which is not valid Unicode",
        "Send UTF-8 text; in JSON a \\uD800-\\uDFFF escape must be half of a surrogate pair.",
    )
