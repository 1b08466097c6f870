"""Assistants that answer from a team's own documents on a small local model.

    from assistant import Assistant
    bot = Assistant.from_settings()
    bot.ingest("data/", collection="handbook")
    reply = bot.ask("How often is the X200 serviced?", collection="handbook")

Importing this package loads no model, opens no database and imports none of the
other packages: names are resolved on first use (PEP 562), so that `memory`,
`chains` or `retrievers` can import `assistant.errors` without a cycle.

    core          Assistant, the facade: it receives finished parts and delegates to them
    factory       the one place parts are built from settings and wired together
    settings      every setting, declared once in groups (the parts take the groups)
    capabilities  what a model may offer beyond LangChain's interfaces (Protocols)
    llamacpp      the in-process llama.cpp chat model; served: one behind an OpenAI-compatible server
    errors        every error users see, each naming what to do; text: storable text
    testing       FakeChatModel and FakeEmbeddings for your own tests
    threads       a blocking iterator consumed from asyncio (Assistant.astream); locations: where data lives
    cli/          the `assistant` command (documents, questions, memory, serve, eval)
    server/       the HTTP API and chat page (extra: server)
    evals/        metrics and reports of `assistant eval` (extra: eval); extras: which extra a feature needs
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.lazy import lazy_exports

if TYPE_CHECKING:
    from assistant.core import Assistant, build_assistant
    from assistant.errors import (
        AssistantError,
        CollectionBusyError,
        CollectionExistsError,
        ConfigurationError,
        EmbedderMismatchError,
        InputFileError,
        InvalidInputError,
        InvalidQuestionError,
        ModelUnavailableError,
        RuntimeFailure,
        StoreUnavailableError,
        UnknownCollectionError,
        UnknownFactError,
        UnknownSessionError,
        UserError,
    )
    from assistant.llamacpp import ChatLlamaCpp
    from assistant.settings import Settings, load_settings
    from chains.reply import Reply, ReplyChunk, Source
    from memory.facts import Fact
    from memory.records import SessionInfo, StoredMessage, StoredSummary, UserDeletion
    from retrievers.catalog import CollectionInfo
    from retrievers.embedder import EmbedderSpec
    from retrievers.index import ReindexReport
    from retrievers.report import FileIssue, IngestProgress, IngestReport

_WHERE = {
    "Assistant": "assistant.core",
    "build_assistant": "assistant.core",
    "ChatLlamaCpp": "assistant.llamacpp",
    "Settings": "assistant.settings",
    "load_settings": "assistant.settings",
    "Reply": "chains.reply",
    "ReplyChunk": "chains.reply",
    "Source": "chains.reply",
    "Fact": "memory.facts",
    "SessionInfo": "memory.records",
    "StoredMessage": "memory.records",
    "StoredSummary": "memory.records",
    "UserDeletion": "memory.records",
    "CollectionInfo": "retrievers.catalog",
    "EmbedderSpec": "retrievers.embedder",
    "ReindexReport": "retrievers.index",
    "FileIssue": "retrievers.report",
    "IngestProgress": "retrievers.report",
    "IngestReport": "retrievers.report",
    **dict.fromkeys(
        [
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
        ],
        "assistant.errors",
    ),
}

__all__ = [
    "Assistant",
    "AssistantError",
    "ChatLlamaCpp",
    "CollectionBusyError",
    "CollectionExistsError",
    "CollectionInfo",
    "ConfigurationError",
    "EmbedderMismatchError",
    "EmbedderSpec",
    "Fact",
    "FileIssue",
    "IngestProgress",
    "IngestReport",
    "InputFileError",
    "InvalidInputError",
    "InvalidQuestionError",
    "ModelUnavailableError",
    "ReindexReport",
    "Reply",
    "ReplyChunk",
    "RuntimeFailure",
    "SessionInfo",
    "Settings",
    "Source",
    "StoreUnavailableError",
    "StoredMessage",
    "StoredSummary",
    "UnknownCollectionError",
    "UnknownFactError",
    "UnknownSessionError",
    "UserDeletion",
    "UserError",
    "build_assistant",
    "load_settings",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
