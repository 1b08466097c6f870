"""The public API is pinned: changing it is a decision, made here on purpose."""

from __future__ import annotations

import subprocess
import sys

import assistant


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
