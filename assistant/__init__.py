"""Assistants that answer from a team's own documents on a small local model.

    from assistant import Assistant
    bot = Assistant.from_settings()
    bot.ingest("data/", collection="handbook")
    reply = bot.ask("How often is the X200 serviced?", collection="handbook")

Importing this package loads no model and opens no database.
"""

from assistant.core import Assistant
from assistant.errors import (
    AssistantError,
    ConfigurationError,
    EmbedderMismatchError,
    InputFileError,
    InvalidQuestionError,
    ModelUnavailableError,
    RuntimeFailure,
    StoreUnavailableError,
    UnknownCollectionError,
    UnknownSessionError,
    UserError,
)
from assistant.factory import build_assistant
from assistant.llamacpp import ChatLlamaCpp
from assistant.settings import Settings, load_settings
from chains.reply import Reply, ReplyChunk, Source
from memory.store import SessionInfo, StoredMessage
from retrievers.ingest import FileIssue, IngestProgress, IngestReport

__all__ = [
    "Assistant",
    "AssistantError",
    "ChatLlamaCpp",
    "ConfigurationError",
    "EmbedderMismatchError",
    "FileIssue",
    "IngestProgress",
    "IngestReport",
    "InputFileError",
    "InvalidQuestionError",
    "ModelUnavailableError",
    "Reply",
    "ReplyChunk",
    "RuntimeFailure",
    "SessionInfo",
    "Settings",
    "Source",
    "StoreUnavailableError",
    "StoredMessage",
    "UnknownCollectionError",
    "UnknownSessionError",
    "UserError",
    "build_assistant",
    "load_settings",
]
