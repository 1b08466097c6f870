"""Which session a question goes to: a fresh id, or the one the user last talked in.

Every `ask` starts a new conversation unless told otherwise (as simonw/llm does), so a
second, unrelated question is never read as a follow-up of the first. Ids sort by
the time they were made. Imports nothing from the library at import time.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.core import Assistant

__all__ = ["latest_session_id", "new_session_id"]


def new_session_id() -> str:
    """A fresh id such as 20261130-081512-3fa2: local time to the second, then random hex."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def latest_session_id(bot: Assistant, user_id: str) -> str | None:
    """The session the user was most recently active in, if they have one."""
    latest = bot.latest_session(user_id)
    return latest.session_id if latest is not None else None
