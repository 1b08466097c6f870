"""Build an Assistant from settings: the only place default parts are created.

Models load lazily on first use, so building an assistant to list sessions costs
no model load.
"""

from __future__ import annotations

import logging

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from sqlalchemy import Engine

from assistant.core import Assistant
from assistant.errors import ConfigurationError
from assistant.llamacpp import ChatLlamaCpp, bundled_gguf_path
from assistant.settings import Settings, load_settings
from memory.engine import create_memory_engine
from memory.store import SQLMemory
from retrievers.catalog import Catalog
from retrievers.hybrid import SearchOptions
from retrievers.index import DocumentIndex, Embedders
from retrievers.ingest import IngestOptions
from retrievers.loaders import ParseOptions
from retrievers.rerank import CrossEncoderReranker
from retrievers.store import ChunkStore, connect_chroma

__all__ = ["build_assistant", "build_document_index", "build_fallback", "build_local_llm"]

log = logging.getLogger(__name__)


def build_local_llm(settings: Settings) -> BaseChatModel:
    """The small model: in-process llama.cpp, or the one served at llm_base_url."""
    if settings.llm_base_url:
        from assistant.served import ChatServedModel, openai_chat_options

        return ChatServedModel(
            **openai_chat_options(
                settings.llm_base_url,
                settings.llm_model,
                settings.llm_api_key_env,
                settings.llm_max_answer_tokens,
                settings.llm_timeout_s,
            ),
            logprobs=True,  # the router's confidence signal
            top_logprobs=1,  # llama_cpp.server sends no log-probabilities without it
            stream_usage=True,
            max_retries=1,
        )
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

    from assistant.served import openai_chat_options

    return ChatOpenAI(
        **openai_chat_options(
            settings.fallback_base_url,
            settings.fallback_model,
            settings.fallback_api_key_env,
            settings.fallback_max_tokens,
            min(settings.fallback_timeout_s, settings.fallback_deadline_s),
        ),
        max_retries=0,  # the Escalator retries, with backoff, within fallback_deadline_s
    )


def build_document_index(settings: Settings, engine: Engine, *, embeddings: Embeddings | None = None) -> DocumentIndex:
    """Catalog in the memory database, vectors in Chroma (server if chroma_url, else embedded)."""
    client = connect_chroma(settings.chroma_url, settings.data_dir / "chroma")
    where = (
        f"Chroma server {settings.chroma_url}"
        if settings.chroma_url
        else f"Chroma store {settings.data_dir / 'chroma'}"
    )
    return DocumentIndex(
        Catalog(engine),
        ChunkStore(client, where),
        Embedders(
            settings.embedder_spec,
            cache_dir=settings.embedding_cache_dir,
            batch_size=settings.embedding_batch_size,
            override=embeddings,
        ),
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        options=IngestOptions(
            batch_chunks=4 * settings.embedding_batch_size,
            max_file_bytes=int(settings.max_file_mb * 1024 * 1024),
            parse=ParseOptions(
                json_text_field=settings.json_text_field,
                max_file_chars=settings.max_file_chars,
                max_line_chars=settings.max_line_chars,
            ),
            keyword_language=settings.keyword_language,
        ),
        search=SearchOptions(
            mode=settings.retrieval_mode,
            candidates=settings.retrieval_candidates,
            fusion=settings.fusion,
            rrf_k=settings.rrf_k,
            dense_weight=settings.dense_weight,
            keyword_weight=settings.keyword_weight,
            identifier_weight=settings.identifier_weight,
            source_support=settings.source_support,
            neighbours=settings.neighbour_chunks,
            passage_tokens=settings.passage_max_tokens,
            dedupe=settings.dedupe_overlap,
        ),
        reranker=(
            CrossEncoderReranker(settings.reranker_model, top_n=settings.reranker_top_n)
            if settings.reranker_model
            else None
        ),
    )


def build_memory(settings: Settings | None = None) -> SQLMemory:
    """The conversation store alone (for commands that need no model)."""
    settings = settings or load_settings()
    return SQLMemory(create_memory_engine(settings.resolved_database_url))


def build_assistant(
    settings: Settings | None = None,
    *,
    fallback: BaseChatModel | None = None,
    llm: BaseChatModel | None = None,
    embeddings: Embeddings | None = None,
) -> Assistant:
    """The assistant the settings describe; `llm`, `embeddings` and `fallback` replace the defaults."""
    settings = settings or load_settings()
    engine = create_memory_engine(settings.resolved_database_url)
    return Assistant(
        llm=llm if llm is not None else build_local_llm(settings),
        index=build_document_index(settings, engine, embeddings=embeddings),
        memory=SQLMemory(engine),
        settings=settings,
        fallback=fallback if fallback is not None else build_fallback(settings),
    )
