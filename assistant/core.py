"""The Assistant facade: ingest documents, ask questions, manage sessions.

It delegates: ingestion to `retrievers`, turns to `chains.pipeline`, history to
`memory`. It receives its parts; `Assistant.from_settings()` builds the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.document_loaders import BaseLoader
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from assistant.settings import Settings
from chains.pipeline import AnswerPipeline
from chains.prompt import PromptBudget, PromptBuilder
from chains.reply import Reply, ReplyChunk
from chains.route import RoutePolicy
from memory.store import SessionInfo, SQLMemory, StoredMessage
from retrievers.catalog import CollectionInfo
from retrievers.embedder import EmbedderSpec
from retrievers.index import DocumentIndex, ReindexReport
from retrievers.naming import check_collection_name
from retrievers.report import IngestProgress, IngestReport
from retrievers.retriever import PassageRetriever

if TYPE_CHECKING:
    from langchain_core.documents import Document

__all__ = ["Assistant"]


def _approximate_tokens(text: str) -> int:
    # For models and embedders that expose no tokenizer: about four characters a token.
    return max(1, len(text) // 4)


class Assistant:
    def __init__(
        self,
        *,
        llm: BaseChatModel,
        index: DocumentIndex,
        memory: SQLMemory,
        settings: Settings,
        fallback: BaseChatModel | None = None,
    ) -> None:
        self.llm = llm
        self.index = index
        self.memory = memory
        self.settings = settings
        self.fallback = fallback
        count_llm_tokens: Callable[[str], int] = getattr(llm, "count_tokens", _approximate_tokens)
        self.pipeline = AnswerPipeline(
            llm=llm,
            count_tokens=count_llm_tokens,
            retriever=self.retriever,
            memory=memory,
            policy=RoutePolicy(
                min_relevance=settings.min_relevance,
                min_mean_logprob=settings.min_mean_logprob,
                has_fallback=fallback is not None,
            ),
            prompt=PromptBuilder(
                count_llm_tokens,
                PromptBudget(
                    context_tokens=settings.llm_context_tokens,
                    answer_tokens=settings.llm_max_answer_tokens,
                    history_tokens=settings.history_token_budget,
                    passage_tokens=settings.passage_token_budget,
                ),
            ),
            history_messages=settings.history_turns,
            fallback=fallback,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        fallback: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
    ) -> Assistant:
        """The bundled defaults (or what settings name); state under settings.data_dir."""
        from assistant.factory import build_assistant

        return build_assistant(settings, fallback=fallback, embeddings=embeddings)

    # Documents ----------------------------------------------------------------------

    def ingest(
        self,
        path: str | Path,
        collection: str | None = None,
        *,
        loaders: Mapping[str, Callable[[Path], BaseLoader]] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        """Bring a collection in step with a file or folder (created if new).

        Only new and changed files are parsed and embedded; files gone from the folder
        lose their chunks; moved files keep theirs. Unreadable files are reported in
        the returned report and keep what they had. `loaders` maps a file suffix
        (".epub") to a factory of any LangChain BaseLoader, for formats we do not read.
        """
        return self.index.ingest(Path(path), self._collection(collection), loaders=loaders, on_progress=on_progress)

    def collections(self) -> list[str]:
        return self.index.names()

    def create_collection(self, collection: str, embedder: EmbedderSpec | None = None) -> CollectionInfo:
        return self.index.create(check_collection_name(collection), embedder)

    def describe_collection(self, collection: str | None = None) -> CollectionInfo:
        return self.index.describe(self._collection(collection))

    def delete_collection(self, collection: str) -> None:
        self.index.delete(check_collection_name(collection))

    def reindex(
        self,
        collection: str,
        embedder: EmbedderSpec | None = None,
        *,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> ReindexReport:
        """Rebuild a collection with another embedder beside the old index, then switch to it."""
        return self.index.reindex(check_collection_name(collection), embedder, on_progress=on_progress)

    def retriever(self, collection: str | None = None) -> PassageRetriever:
        """A LangChain retriever over one collection (raises if it does not exist)."""
        return self.index.retriever(self._collection(collection), self.settings.top_k)

    def search(self, query: str, collection: str | None = None) -> list[Document]:
        return self.retriever(collection).invoke(query)

    # Conversation ----------------------------------------------------------------------

    def ask(
        self, question: str, *, user_id: str = "default", session_id: str = "default", collection: str | None = None
    ) -> Reply:
        """Answer one question in a session; the turn is stored in memory."""
        for chunk in self.stream(question, user_id=user_id, session_id=session_id, collection=collection):
            if chunk.reply is not None:
                return chunk.reply
        raise AssertionError("the pipeline ended without a reply")

    def stream(
        self, question: str, *, user_id: str = "default", session_id: str = "default", collection: str | None = None
    ) -> Iterator[ReplyChunk]:
        """The answer's text as it is produced; the last chunk carries the whole Reply."""
        return self.pipeline.turn(
            question, user_id=user_id, session_id=session_id, collection=self._collection(collection)
        )

    def sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        return self.memory.sessions(user_id)

    def history(self, user_id: str, session_id: str) -> list[StoredMessage]:
        return self.memory.messages(user_id, session_id)

    def delete_session(self, user_id: str, session_id: str) -> None:
        self.memory.delete_session(user_id, session_id)

    def _collection(self, name: str | None) -> str:
        return check_collection_name(name or self.settings.default_collection)
