"""Collection names: one rule shared by settings, the store, the CLI and the HTTP API.

Chroma accepts 3 to 512 characters from [a-zA-Z0-9._-], starting and ending with a
letter or digit; we check it up front so the message names the value and the fix.

A private collection is stored under its owner's scope, `<name>.<12 hex>-` (the hex
from the owner's id), so that two users may each have a private "notes" and a shared
"notes" may exist beside them: creating a name never tells whether someone else holds
it privately. The stored form ends in "-", which no name a user picks can, so it never
collides with a shared name. Imports nothing from the project but the errors.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from assistant.errors import ConfigurationError

__all__ = [
    "check_collection_name",
    "check_new_collection_name",
    "confusable_with",
    "is_private_name",
    "name_skeletons",
    "private_name",
    "shown_name",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
_PRIVATE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{1,496}[A-Za-z0-9])\.[0-9a-f]{12}-$")
_SCOPE_CHARS = 14  # ".<12 hex>-"
_FIX = "Use 3 to {} letters, digits, '.', '_' or '-', starting and ending with a letter or digit."


def check_collection_name(name: str) -> str:
    """A collection's name as stored: a user's name, or a private collection's scoped form."""
    if not (_NAME.match(name) or _PRIVATE.match(name)):
        raise ConfigurationError("collection", f"{name!r} is not a valid collection name", _FIX.format(512))
    return name


def check_new_collection_name(name: str, *, private: bool = False) -> str:
    """A name a user picks for a new collection (a private one leaves room for its scope)."""
    limit = 512 - _SCOPE_CHARS if private else 512
    if not _NAME.match(name) or len(name) > limit:
        raise ConfigurationError("collection", f"{name!r} is not a valid collection name", _FIX.format(limit))
    return name


def private_name(name: str, owner: str) -> str:
    """How `owner`'s private collection `name` is stored."""
    return f"{name}.{hashlib.sha256(owner.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}-"


def is_private_name(stored: str) -> bool:
    return _PRIVATE.match(stored) is not None


def shown_name(stored: str) -> str:
    """The name its users call a collection by (a private one without its scope)."""
    found = _PRIVATE.match(stored)
    return found.group("name") if found else stored


# Letters of other scripts drawn like Latin ones, and digits drawn like letters (after casefold).
_LOOKALIKES = str.maketrans(
    {
        "0": "o", "1": "l", "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
        "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s",
        "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k",
        "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ɡ": "g", "ı": "i",
    }
)  # fmt: skip
_SEPARATORS = re.compile(r"[\W_]+")
_LETTER_PAIRS = (("rn", "m"), ("vv", "w"))


def name_skeletons(name: str) -> frozenset[str]:
    """What a name looks like to a reader: NFKC, no case, look-alike letters folded, no separators.

    "Billing-Ops", "billing_ops", "bi1ling.ops" and "bіlling-ops" (Cyrillic і) share one. A
    capital I reads as a lower-case l, so a second skeleton folds it before the case."""
    normal = unicodedata.normalize("NFKC", name)
    return frozenset(_skeleton(form.casefold()) for form in (normal, normal.replace("I", "l")))


def _skeleton(folded: str) -> str:
    folded = _SEPARATORS.sub("", folded.translate(_LOOKALIKES))
    for pair, letter in _LETTER_PAIRS:
        folded = folded.replace(pair, letter)
    return folded


def confusable_with(name: str, existing: Iterable[str]) -> str | None:
    """The first of `existing` a reader could take `name` for (itself included), or None."""
    mine = name_skeletons(name)
    return next((other for other in existing if mine & name_skeletons(other)), None)
