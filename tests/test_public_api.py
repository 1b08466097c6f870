"""The public API is pinned: changing it is a decision, made here on purpose."""

from __future__ import annotations

import inspect
import subprocess
import sys

import assistant
from assistant import Assistant, Reply, ReplyChunk


def test_exported_members() -> None:
    assert sorted(assistant.__all__) == sorted(
        [
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
    )
    for name in assistant.__all__:
        assert getattr(assistant, name) is not None


def test_import_loads_no_model_or_store() -> None:
    code = (
        "import sys, assistant; heavy = {'torch', 'chromadb', 'llama_cpp', 'sentence_transformers', "
        "'langchain_openai', 'onnxruntime', 'sqlalchemy'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_turn_api() -> None:
    """ask, stream, prepare, aask and astream take the same arguments; the async ones are async."""
    turn = ["question", "user_id", "session_id", "collection", "route", "instructions", "max_tokens"]
    for name in ("ask", "stream", "prepare", "aask", "astream"):
        assert list(inspect.signature(getattr(Assistant, name)).parameters)[1:] == turn, name
    assert inspect.iscoroutinefunction(Assistant.aask)
    assert inspect.isasyncgenfunction(Assistant.astream)
    assert list(inspect.signature(Assistant.retriever).parameters)[1:] == ["collection", "k"]
    for name in ("close", "__enter__", "__exit__", "__aenter__", "__aexit__"):
        assert callable(getattr(Assistant, name)), name
    assert ReplyChunk("").stage is None and ReplyChunk("", stage="searching").text == ""
    assert Reply.__dataclass_fields__["finish_reason"].default == "stop"
