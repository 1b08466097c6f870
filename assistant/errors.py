"""Every error the framework raises on purpose.

AssistantError
 ├── UserError                    a mistake the caller can fix
 │    ├── ConfigurationError      a setting is missing or wrong (names the setting)
 │    ├── InputFileError          a document cannot be read or is not supported
 │    ├── UnknownCollectionError  a collection that was never ingested, or none named among several
 │    ├── UnknownSessionError     a session or user that does not exist
 │    ├── UnknownFactError        a remembered fact that does not exist (for that user)
 │    ├── EmbedderMismatchError   a collection queried with another embedder
 │    ├── CollectionExistsError   creating a collection that exists, or one named like it
 │    └── InvalidInputError       an empty, oversized or malformed value (names it)
 │         └── InvalidQuestionError   an empty or oversized question
 └── RuntimeFailure               something outside the caller's code failed
      ├── ModelUnavailableError   a GGUF file or a fallback endpoint cannot be used
      ├── StoreUnavailableError   the SQL database or Chroma cannot be reached
      └── CollectionBusyError     another process is writing the collection

The CLI turns every AssistantError into one message and an exit code; nothing here
logs. A name that is not found is met with the closest known ones ("did you mean
'support'?"), so the message suggests the right fix rather than creating a typo.
This module imports nothing from the project.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = [
    "AssistantError",
    "CollectionBusyError",
    "CollectionExistsError",
    "ConfigurationError",
    "EmbedderMismatchError",
    "InputFileError",
    "InvalidInputError",
    "InvalidQuestionError",
    "ModelUnavailableError",
    "RuntimeFailure",
    "StoreUnavailableError",
    "UnknownCollectionError",
    "UnknownFactError",
    "UnknownSessionError",
    "UserError",
    "close_matches",
]


class AssistantError(Exception):
    """Base of every error raised on purpose by this package."""


class UserError(AssistantError):
    """The caller can fix this: a setting, an input file, a name."""


class RuntimeFailure(AssistantError):
    """A part outside the caller's code failed: a model, a database, a server."""


class ConfigurationError(UserError):
    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"setting {setting!r}: {problem}. {fix}")


class InputFileError(UserError):
    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def close_matches(name: str, known: Sequence[str]) -> list[str]:
    """The known names a reader most likely meant by `name` (a typo, another case), best first."""
    by_folded = {other.casefold(): other for other in known}
    return [by_folded[m] for m in difflib.get_close_matches(name.casefold(), list(by_folded), n=3, cutoff=0.6)]


def _did_you_mean(what: str, matches: list[str]) -> str:
    return f"did you mean {what}" + " or ".join(repr(m) for m in matches) + "?"


class UnknownCollectionError(UserError):
    """`collection` is not stored; `known` are the names that are. With `chosen=False` no name was
    given and several collections exist, so none could be taken as the default."""

    def __init__(self, collection: str, known: list[str], *, chosen: bool = True) -> None:
        self.collection = collection
        self.known = known
        self.chosen = chosen
        # Private collections are stored as "<name>.<hex>-": never suggest another user's.
        shared = [name for name in known if not name.endswith("-")]
        listing = ", ".join(shared) if shared else "none yet"
        if not chosen:
            super().__init__(
                f"no collection was named, and there are several ({listing}). "
                "Name one (-c NAME on the command line), or set default_collection (ASSISTANT_DEFAULT_COLLECTION)"
            )
            return
        matches = close_matches(collection, shared)
        if matches:
            super().__init__(f"collection {collection!r} does not exist; {_did_you_mean('', matches)}")
            return
        super().__init__(
            f"collection {collection!r} does not exist (known: {listing}). "
            f"Create it with: assistant ingest PATH --collection {collection}"
        )


class UnknownSessionError(UserError):
    """A session (or, with no `session_id`, a user) that is not stored; `user_id` None: under no user.
    `known_sessions`: the user's session ids (or everyone's), `known_users`: every user id, when the user
    is not stored; the closest are suggested."""

    def __init__(
        self,
        user_id: str | None,
        session_id: str | None = None,
        *,
        known_sessions: Sequence[str] = (),
        known_users: Sequence[str] = (),
    ) -> None:
        self.user_id = user_id
        self.session_id = session_id
        if session_id:
            what = f"session {session_id!r}" + (f" of user {user_id!r}" if user_id is not None else "")
        else:
            what = f"user {user_id!r}"
        sessions = close_matches(session_id, known_sessions) if session_id else []
        users = close_matches(user_id, known_users) if user_id is not None else []
        if sessions:
            hint = _did_you_mean("session ", sessions)
        elif users:
            hint = _did_you_mean("user ", users)
        else:
            hint = ""
        listing = "assistant sessions list" + (f" --user {user_id}" if user_id and known_sessions else "")
        if not session_id:
            listing = "assistant users list"
        super().__init__(
            f"{what} does not exist; {hint}" if hint else f"{what} does not exist. List them with: {listing}"
        )


class UnknownFactError(UserError):
    def __init__(self, user_id: str, fact_id: int) -> None:
        self.user_id = user_id
        self.fact_id = fact_id
        super().__init__(
            f"fact {fact_id} of user {user_id!r} does not exist. List them with: assistant memory list --user {user_id}"
        )


class EmbedderMismatchError(UserError):
    def __init__(self, collection: str, stored: str, current: str) -> None:
        self.collection = collection
        self.stored = stored
        self.current = current
        super().__init__(
            f"collection {collection!r} was indexed with embedder {stored!r}, "
            f"but it is being queried with {current!r}. Query it with the embedder it was built with, "
            f"or rebuild it for the new one: assistant reindex {collection} --embedder MODEL_DIR"
        )


class CollectionExistsError(UserError):
    """The name is taken, or (`like`) reads the same as a shared collection's name."""

    def __init__(self, collection: str, like: str | None = None) -> None:
        self.collection = collection
        self.like = like
        if like is not None and like != collection:
            super().__init__(
                f"collection {collection!r} would be confused with the existing collection {like!r} "
                "(names that differ only in case, separators or look-alike characters are refused). "
                f"Use {like!r}, or pick a name that reads differently."
            )
            return
        super().__init__(
            f"collection {collection!r} already exists. Ingest into it, describe it "
            f"(assistant collections describe {collection}) or pick another name."
        )


class InvalidInputError(UserError):
    def __init__(self, what: str, problem: str, fix: str = "") -> None:
        self.what = what
        self.problem = problem
        self.fix = fix
        super().__init__(f"{what}: {problem}." + (f" {fix}" if fix else ""))


class InvalidQuestionError(InvalidInputError):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.what, self.problem, self.fix = "question", reason, ""
        UserError.__init__(self, reason)


class ModelUnavailableError(RuntimeFailure):
    def __init__(self, model: str, reason: str, fix: str) -> None:
        self.model = model
        self.reason = reason
        self.fix = fix
        super().__init__(f"model {model}: {reason}. {fix}")


class StoreUnavailableError(RuntimeFailure):
    def __init__(self, store: str, reason: str, fix: str) -> None:
        self.store = store
        self.reason = reason
        self.fix = fix
        super().__init__(f"{store}: {reason}. {fix}")


class CollectionBusyError(RuntimeFailure):
    def __init__(self, collection: str, holder: str, since: str) -> None:
        self.collection = collection
        self.holder = holder
        super().__init__(
            f"collection {collection!r} is being written by {holder} (since {since}). "
            f"Wait for that ingestion or reindex to finish, then run again."
        )
