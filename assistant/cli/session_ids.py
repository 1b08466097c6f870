"""Which session a question goes to, and in which collection: a fresh id, or the one the
user last talked in, going on in the collection its last answer came from.

Every `ask` starts a new conversation unless told otherwise (as simonw/llm does), so a
second, unrelated question is never read as a follow-up of the first. Ids sort by
the time they were made. Imports only `assistant.errors` at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.errors import UnknownSessionError

if TYPE_CHECKING:
    from assistant.core import Assistant
    from memory.records import StoredMessage

__all__ = ["collection_of", "latest_session_id", "new_session_id", "session_collection"]


def new_session_id() -> str:
    """A fresh id such as 20261130-081512-3fa2b1c9, as the library makes for `Assistant.ask`."""
    from memory.records import new_session_id as fresh  # imported here: `memory` is slow to import

    return fresh()


def latest_session_id(bot: Assistant, user_id: str) -> str | None:
    """The session the user was most recently active in, if they have one."""
    latest = bot.latest_session(user_id)
    return latest.session_id if latest is not None else None


def session_collection(bot: Assistant, user_id: str, session_id: str) -> str | None:
    """The collection the session's last answer came from; None for a session not stored yet."""
    try:
        return collection_of(bot.history(user_id, session_id))
    except UnknownSessionError:  # a new id: stored with its first turn
        return None


def collection_of(history: list[StoredMessage]) -> str | None:
    """The collection of the last answer in `history`, when it was stored with one."""
    answers = [message for message in history if message.role == "assistant"]
    collection = answers[-1].signals.get("collection") if answers else None
    return collection if isinstance(collection, str) and collection else None
