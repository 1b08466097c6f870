"""Build an Assistant from settings: the only place default parts are created.

Models load lazily on first use, so building an assistant to list sessions costs
no model load.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from assistant.core import Assistant
from assistant.errors import ConfigurationError
from assistant.llamacpp import ChatLlamaCpp, bundled_gguf_path
from assistant.settings import Settings, load_settings
from memory.engine import create_memory_engine
from memory.store import SQLMemory
from retrievers.embedder import SentenceEmbedder, bundled_embedder_path
from retrievers.store import ChunkStore, connect_chroma

__all__ = ["build_assistant", "build_fallback", "build_local_llm"]

log = logging.getLogger(__name__)


def build_local_llm(settings: Settings) -> ChatLlamaCpp:
    return ChatLlamaCpp(
        model_path=settings.llm_model_path or bundled_gguf_path(),
        n_ctx=settings.llm_context_tokens,
        max_tokens=settings.llm_max_answer_tokens,
        temperature=settings.llm_temperature,
        n_threads=settings.llm_threads,
    )


def build_fallback(settings: Settings) -> BaseChatModel | None:
    """An OpenAI-compatible chat model when fallback_base_url is set, else None."""
    if not settings.fallback_base_url:
        return None
    if not settings.fallback_model:
        raise ConfigurationError(
            "fallback_model", "is required when fallback_base_url is set", "Set ASSISTANT_FALLBACK_MODEL."
        )
    from langchain_openai import ChatOpenAI

    # Local servers (llama_cpp.server, vLLM, Ollama) accept any key; hosted ones need theirs.
    key = os.environ.get(settings.fallback_api_key_env) or "unset"
    return ChatOpenAI(
        base_url=settings.fallback_base_url,
        model=settings.fallback_model,
        api_key=key,  # type: ignore[arg-type]
        timeout=settings.fallback_timeout_s,
        max_retries=1,
        max_tokens=settings.fallback_max_tokens,  # type: ignore[call-arg]
        temperature=0,
    )


def build_assistant(settings: Settings | None = None, *, fallback: BaseChatModel | None = None) -> Assistant:
    settings = settings or load_settings()
    embedder = SentenceEmbedder(
        Path(settings.embedding_model).expanduser() if settings.embedding_model else bundled_embedder_path(),
        batch_size=settings.embedding_batch_size,
    )
    client = connect_chroma(settings.chroma_url, settings.data_dir / "chroma")
    return Assistant(
        llm=build_local_llm(settings),
        embeddings=embedder,
        chunks=ChunkStore(client, embedder.name),
        memory=SQLMemory(create_memory_engine(settings.resolved_database_url)),
        settings=settings,
        fallback=fallback if fallback is not None else build_fallback(settings),
    )
