"""Who may call the HTTP API, and which collections a key's user sees and may change.

A request carries `Authorization: Bearer <key>` (see memory.keys) and acts as the
key's user. A user calls a collection by its name; their own private one wins over a
shared one of the same name, and another user's private one is answered 404 as if it
did not exist (nor suggested for a misspelt name). Writing a collection takes the key
of the user who created it, or an admin key, else 403.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from assistant.errors import close_matches
from assistant.server.errors import ApiError
from retrievers.naming import shown_name

if TYPE_CHECKING:
    from assistant.core import Assistant
    from memory.keys import KeyInfo
    from retrievers.catalog import CollectionInfo

__all__ = ["authenticate", "collections_of", "may_write", "suggestion", "visible", "writable"]


def authenticate(bot: Assistant, authorization: str, requests_per_minute: int) -> KeyInfo:
    """The live key of an Authorization header, counted against its rate; else 401 or 429."""
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(
            401,
            "Missing API key: send 'Authorization: Bearer <key>' (create one with: assistant keys create --user NAME).",
            code="invalid_api_key",
        )
    key = bot.memory.keys.verify(secret.strip())
    if key is None:
        raise ApiError(401, "Invalid or revoked API key.", code="invalid_api_key")
    if requests_per_minute:
        count = bot.memory.keys.count_request(key.id)
        if count > requests_per_minute:
            raise ApiError(
                429,
                f"More than {requests_per_minute} requests this minute for this key; retry later.",
                kind="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(60 - int(time.time()) % 60)},
            )
    return key


def collections_of(bot: Assistant, key: KeyInfo) -> dict[str, str]:
    """The collections the key's user sees, by the name they call them (value: as stored).
    Their own private collection wins over a shared one of the same name."""
    found: dict[str, str] = {}
    for stored in bot.collections(visible_to=key.user_id):
        shown = shown_name(stored)
        if stored != shown or shown not in found:
            found[shown] = stored
    return found


def suggestion(name: str, seen: Iterable[str]) -> str:
    """ "did you mean 'support'? " for a misspelt `name`, else "". `seen` must hold only the
    names the caller may see (collections_of), so that no other user's name is revealed."""
    matches = close_matches(name, list(seen))
    return f"did you mean {' or '.join(repr(m) for m in matches)}? " if matches else ""


def visible(bot: Assistant, name: str, key: KeyInfo) -> str:
    """The stored name of the collection the key's user calls `name`; otherwise 404, exactly
    as for a name nobody holds (another user's private collection is not told apart)."""
    seen = collections_of(bot, key)
    stored = seen.get(name)
    if stored is None:
        raise ApiError(
            404, f"No collection '{name}'; {suggestion(name, seen)}GET /v1/collections lists yours.", code="not_found"
        )
    return stored


def may_write(info: CollectionInfo, key: KeyInfo) -> bool:
    return key.is_admin or key.user_id in (info.owner, info.created_by)


def writable(bot: Assistant, name: str, key: KeyInfo) -> str:
    """As `visible`, and a 403 unless the key may change the collection."""
    stored = visible(bot, name, key)
    if not may_write(bot.describe_collection(stored), key):
        raise ApiError(
            403,
            f"You may read collection '{name}' but not change it: only the user who created it, "
            "or an admin key (assistant keys create --role admin), may upload to it or delete it.",
            kind="permission_error",
            code="forbidden",
        )
    return stored
