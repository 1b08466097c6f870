"""LangChain's own standard tests (langchain-tests) for our llama.cpp chat model and our
retriever. What the 135M model cannot do is declared, as the suite asks: no tool calling,
no structured output, no image, audio, PDF or video inputs."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import ChatModelIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from assistant import Assistant
from assistant.llamacpp import ChatLlamaCpp, bundled_gguf_path

pytestmark = pytest.mark.llm


class _Declared:
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatLlamaCpp

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_path": bundled_gguf_path(), "n_ctx": 2048}

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False


class TestChatLlamaCppUnit(_Declared, ChatModelUnitTests):
    pass


class TestChatLlamaCppIntegration(_Declared, ChatModelIntegrationTests):
    pass


class TestPassageRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _assistant(self, bot: Assistant) -> None:
        type(self).assistant = bot

    assistant: Assistant

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        from retrievers.retriever import PassageRetriever

        return PassageRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"searcher": self.assistant.index.searcher, "collection": "handbook"}

    @property
    def retriever_query_example(self) -> str:
        return "How long is the X200 warranty?"
