"""A session as a JSON document, and back.

The document holds everything the database holds about the session: its messages
with all their fields (route, model, sources, signals, times) and its rolling
summaries. Importing validates the whole document first and writes it in one
transaction, so a bad file changes nothing and names the field that is wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from assistant.errors import InvalidInputError
from memory.records import ROLES, NewMessage, StoredSummary
from memory.store import SQLMemory

__all__ = ["FORMAT", "VERSION", "export_session", "import_session"]

FORMAT = "assistant-session"
VERSION = 1


def export_session(memory: SQLMemory, user_id: str, session_id: str) -> dict[str, Any]:
    info = memory.session_info(user_id, session_id)
    return {
        "format": FORMAT,
        "version": VERSION,
        "user_id": user_id,
        "session_id": session_id,
        "title": info.title,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "messages": [
            {
                "seq": m.seq,
                "role": m.role,
                "content": m.content,
                "token_count": m.token_count,
                "created_at": m.created_at.isoformat(),
                "route": m.route,
                "model": m.model,
                "reason": m.reason,
                "sources": m.sources,
                "signals": m.signals,
            }
            for m in memory.messages(user_id, session_id)
        ],
        "summaries": [
            {
                "through_seq": s.through_seq,
                "content": s.content,
                "token_count": s.token_count,
                "model": s.model,
                "created_at": s.created_at.isoformat(),
            }
            for s in memory.summaries(user_id, session_id)
        ],
    }


def import_session(
    memory: SQLMemory,
    document: Any,
    *,
    user_id: str | None = None,
    session_id: str | None = None,
    origin: str = "session document",
) -> tuple[str, str]:
    """Store an exported session (under another user or session id if given); returns (user, session)."""
    doc = _Reader(origin)
    data = doc.mapping(document, "")
    if data.get("format") != FORMAT:
        raise doc.error("format", f"must be {FORMAT!r}, got {data.get('format')!r}; is this a session export?")
    if data.get("version") != VERSION:
        raise doc.error("version", f"{data.get('version')!r} is not supported; this version reads {VERSION}")
    user = user_id or doc.text(data, "user_id")
    session = session_id or doc.text(data, "session_id")
    messages: list[tuple[NewMessage, datetime]] = []
    for i, item in enumerate(doc.items(data, "messages")):
        where = f"messages[{i}]"
        m = doc.mapping(item, where)
        if m.get("seq", i + 1) != i + 1:
            raise doc.error(f"{where}.seq", f"is {m.get('seq')!r}, expected {i + 1}: messages must be in order")
        role = doc.text(m, "role", where)
        if role not in ROLES:
            raise doc.error(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        message = NewMessage(
            role=role,
            content=doc.text(m, "content", where, empty_ok=True),
            token_count=doc.integer(m, "token_count", where),
            route=doc.optional_text(m, "route", where),
            model=doc.optional_text(m, "model", where),
            reason=doc.optional_text(m, "reason", where),
            sources=doc.optional(m, "sources", where, list),
            signals=doc.optional(m, "signals", where, dict),
        )
        messages.append((message, doc.time(m, "created_at", where)))
    summaries = []
    for i, item in enumerate(doc.items(data, "summaries", required=False)):
        where = f"summaries[{i}]"
        s = doc.mapping(item, where)
        through = doc.integer(s, "through_seq", where)
        if not 1 <= through <= len(messages):
            raise doc.error(f"{where}.through_seq", f"{through} is not the number of a message in this session")
        summaries.append(
            StoredSummary(
                through_seq=through,
                content=doc.text(s, "content", where),
                token_count=doc.integer(s, "token_count", where),
                model=doc.text(s, "model", where),
                created_at=doc.time(s, "created_at", where),
            )
        )
    title = data.get("title") if isinstance(data.get("title"), str) else ""
    memory.import_session(
        user,
        session,
        title or "",
        messages,
        summaries,
        created_at=doc.time(data, "created_at", "") if "created_at" in data else None,
        updated_at=doc.time(data, "updated_at", "") if "updated_at" in data else None,
    )
    return user, session


class _Reader:
    """Typed field access that names the field and the document on every error."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def error(self, field: str, problem: str) -> InvalidInputError:
        return InvalidInputError(f"{self.origin}: {field}", problem, "Fix the file, or export the session again.")

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(where or "document", f"must be a JSON object, got {type(value).__name__}")
        return value

    def items(self, data: dict[str, Any], key: str, *, required: bool = True) -> list[Any]:
        value = data.get(key, None if required else [])
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, got {type(value).__name__}")
        return value

    def text(self, data: dict[str, Any], key: str, where: str = "", *, empty_ok: bool = False) -> str:
        value = data.get(key)
        if not isinstance(value, str) or (not empty_ok and not value.strip()):
            raise self.error(_at(where, key), f"must be a non-empty string, got {value!r}"[:200])
        return value

    def optional_text(self, data: dict[str, Any], key: str, where: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(_at(where, key), f"must be a string or null, got {type(value).__name__}")
        return value

    def optional(self, data: dict[str, Any], key: str, where: str, kind: type) -> Any:
        value = data.get(key)
        if value is not None and not isinstance(value, kind):
            raise self.error(_at(where, key), f"must be a {kind.__name__} or null, got {type(value).__name__}")
        return value

    def integer(self, data: dict[str, Any], key: str, where: str) -> int:
        value = data.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise self.error(_at(where, key), f"must be a whole number >= 0, got {value!r}")
        return value

    def time(self, data: dict[str, Any], key: str, where: str) -> datetime:
        value = data.get(key)
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            raise self.error(_at(where, key), f"must be an ISO 8601 time, got {value!r}") from None


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
