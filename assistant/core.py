"""The Assistant facade: ingest documents, ask questions, manage sessions.

It delegates: ingestion to `retrievers`, turns to `chains.pipeline`, history to
`memory`. It receives its parts; `Assistant.from_settings()` builds the defaults.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from assistant.errors import InvalidInputError, UnknownCollectionError
from memory.records import check_text, new_session_id
from retrievers.naming import check_collection_name, is_private_name

if TYPE_CHECKING:
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from assistant.factory import ModelLoad, Parts
    from assistant.settings import Settings
    from assistant.summaries import DocumentSummaries, SummaryReport
    from chains.confidence import ConfidenceModel
    from chains.document_summary import DocumentSummarizer, DocumentSummary
    from chains.pipeline import AnswerPipeline, Prepared
    from chains.reply import Reply, ReplyChunk
    from chains.route import RequestedRoute
    from memory.audit import EscalationRecord
    from memory.facts import Fact
    from memory.ratings import ReviewTurn, StoredRating
    from memory.records import SessionInfo, StoredMessage, StoredSummary, UserDeletion
    from memory.store import SQLMemory
    from retrievers.catalog import CollectionInfo
    from retrievers.embedder import EmbedderSpec
    from retrievers.index import DocumentIndex, IndexCheck, ReindexReport
    from retrievers.report import IngestProgress, IngestReport
    from retrievers.retriever import PassageRetriever

# Importing this module imports no model library, no LangChain and no SQLAlchemy: each
# method imports what it needs, so that `from assistant import Assistant` stays fast.

__all__ = ["Assistant", "build_assistant"]


class Assistant:
    """Delegates to finished parts; `from_settings()` (or `build_assistant`) has the factory build them."""

    def __init__(
        self, *, index: DocumentIndex, memory: SQLMemory, pipeline: AnswerPipeline, settings: Settings
    ) -> None:
        self.index = index
        self.memory = memory
        self.pipeline = pipeline
        self.settings = settings
        self.closed = False
        self._summaries: DocumentSummaries | None = None

    @classmethod
    def from_parts(cls, parts: Parts) -> Assistant:
        return cls(index=parts.index, memory=parts.memory, pipeline=parts.pipeline, settings=parts.settings)

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        fallback: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
        llm: BaseChatModel | None = None,
    ) -> Assistant:
        """The bundled defaults (or what settings name); state under settings.data_dir.
        `llm`, `embeddings` and `fallback` replace the default models."""
        from assistant.factory import build_parts

        return cls.from_parts(build_parts(settings, fallback=fallback, llm=llm, embeddings=embeddings))

    def with_settings(self, **changes: Any) -> Assistant:
        """An assistant on the same models, documents and memory, with some settings changed
        for its turns (routing thresholds, prompt budgets, history...), like LangChain's
        `with_config`. Settings of storage and documents keep their values."""
        from assistant.factory import build_pipeline

        settings = self.settings.model_validate({**self.settings.model_dump(), **changes})
        pipeline = build_pipeline(
            settings,
            llm=self.llm,
            index=self.index,
            memory=self.memory,
            fallback=self.fallback,
            ready=self.pipeline.ready,  # the same models: loaded once
        )
        pipeline.followups = self.pipeline.followups  # one worker and one order for the shared memory
        return Assistant(index=self.index, memory=self.memory, pipeline=pipeline, settings=settings)

    @property
    def llm(self) -> BaseChatModel:
        """The small local model."""
        return self.pipeline.llm

    @property
    def fallback(self) -> BaseChatModel | None:
        """The large model, if there is one."""
        return self.pipeline.escalator.model if self.pipeline.escalator is not None else None

    def preload(self) -> ModelLoad | None:
        """Start loading the local model, the embedder and the Chroma client on background threads,
        so the first question finds them loaded (or waits only for what is left). Call it as soon as
        you know questions will come, as `assistant ask` and `chat` do; loading is otherwise lazy.
        Returns the load (its `timings` per part once done), or None if nothing is loaded here."""
        from assistant.factory import start_loading

        return start_loading(self.pipeline)

    def close(self) -> None:
        """Release the llama.cpp model, the Chroma client and the database connections. Safe
        to call twice. Assistants made with `with_settings` share these parts and are closed too."""
        if self.closed:
            return
        self.closed = True
        self.pipeline.followups.close()  # what follows the last answers is stored first
        from assistant.factory import ModelLoad
        from assistant.llamacpp import ChatLlamaCpp

        if isinstance(self.pipeline.ready, ModelLoad):
            self.pipeline.ready.join()  # a model still loading is not opened after its close

        if isinstance(self.llm, ChatLlamaCpp):
            self.llm.close()
        self.index.store.close()  # closing never connects
        self.memory.engine.dispose()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Assistant:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        from langchain_core.runnables.config import run_in_executor

        await run_in_executor(None, self.close)

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

    def collections(self, visible_to: str | None = None) -> list[str]:
        """Collection names as stored; with `visible_to`, only the shared ones and that user's private
        ones (stored under the owner's scope: `retrievers.naming.shown_name` gives the name they use)."""
        return self.index.names(visible_to)

    def create_collection(
        self,
        collection: str,
        embedder: EmbedderSpec | None = None,
        *,
        local_only: bool = False,
        owner: str | None = None,
        created_by: str | None = None,
    ) -> CollectionInfo:
        """A new, empty collection; `local_only` ones are never sent to a large model.

        `owner`: private to that user (the HTTP API hides it from every other user). It is
        stored under the owner's scope (see retrievers.naming), so the returned info's name
        is the one to ask it by. A shared name that reads like an existing shared one
        ("billing_ops" beside "billing-ops") is refused. `created_by`: the user who may
        write it over the HTTP API (default: the owner; None: admin keys only)."""
        return self.index.add(collection, embedder, local_only=local_only, owner=owner, created_by=created_by)

    def set_local_only(self, collection: str, local_only: bool = True) -> CollectionInfo:
        """Mark a collection local-only (its questions never leave this machine's model) or not."""
        return self.index.set_local_only(check_collection_name(collection), local_only)

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

    def retriever(self, collection: str | None = None, *, k: int | None = None) -> PassageRetriever:
        """A LangChain retriever over one collection (raises if it does not exist); `k` passages, default top_k."""
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise InvalidInputError("k", f"must be a whole number of at least 1, got {k!r}")
        return self.index.retriever(self._collection(collection), k or self.settings.top_k)

    def search(self, query: str, collection: str | None = None, *, k: int | None = None) -> list[Document]:
        """The `k` (default top_k) best passages for a query, as LangChain Documents."""
        return self.index.retriever(self._collection(collection), k or self.settings.top_k).invoke(query)

    def check_collection(self, collection: str) -> IndexCheck:
        """Compare the catalog with the vector store, chunk by chunk (`assistant collections check`)."""
        return self.index.check(check_collection_name(collection))

    def chunk_texts(self, collection: str, chunk_ids: list[str]) -> list[str]:
        """The whole texts of these chunks, in order; chunks no longer stored are left out."""
        return self.index.texts(check_collection_name(collection), chunk_ids)

    def sample_chunks(self, collection: str | None, size: int, seed: int = 0) -> list[str]:
        """`size` chunk texts drawn at random, the same ones for the same seed and contents."""
        return self.index.sample_chunks(self._collection(collection), size, seed)

    def embeddings(self, collection: str | None = None) -> Embeddings:
        """The embedder a collection was indexed with."""
        return self.index.embeddings_for(self._collection(collection))

    # Summaries -------------------------------------------------------------------------

    def summarize(
        self,
        target: str | None = None,
        *,
        collection: str | None = None,
        focus: str | None = None,
        refresh: bool = False,
        user_id: str = "default",
    ) -> DocumentSummary:
        """A short summary of a document or, with no `target`, of a whole collection; every sentence
        carries the citation of the section it came from ("policy.md › Leave"), `.text()` shows it.

        `target`: a document as its answers cite it ("policy.md", "legal/policy.md") or the path of
        an ingested file; a file that was never ingested is read and summarised, and not stored.
        A document's summary is stored with it and served from there until the document changes
        (then made again); `refresh` makes it again now. `focus` ("obligations") steers it, stored
        apart. The large model is asked only for sections the local one could not summarise with
        backed sentences, and only where an answer could use it (never for a local-only collection);
        each call is in `escalations()`. Unknown names raise an error that suggests the closest ones."""
        return self.summary_report(target, collection=collection, focus=focus, refresh=refresh, user_id=user_id).summary

    def summary_report(
        self,
        target: str | None = None,
        *,
        collection: str | None = None,
        focus: str | None = None,
        refresh: bool = False,
        user_id: str = "default",
    ) -> SummaryReport:
        """`summarize`, with where the summary came from: the document or collection, whether it was
        served from the store and when it was made."""
        check_text("user id", user_id)
        if target is not None:
            check_text("document", target)
        return self._document_summaries().summarize(
            target,
            collection=check_collection_name(collection) if collection else None,
            default_collection=lambda: self._collection(None),
            focus=focus,
            refresh=refresh,
            user_id=user_id,
        )

    def _document_summaries(self) -> DocumentSummaries:
        if self._summaries is None:
            from assistant.factory import build_document_summarizer
            from assistant.summaries import DocumentSummaries

            def make(
                embeddings: Embeddings, collection: str | None, local_only: bool, user_id: str
            ) -> DocumentSummarizer:
                return build_document_summarizer(
                    self.settings,
                    self.pipeline,
                    embeddings,
                    collection=collection,
                    local_only=local_only,
                    user_id=user_id,
                )

            self._summaries = DocumentSummaries(self.index, make)
        return self._summaries

    # Conversation ----------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        collection: str | None = None,
        route: RequestedRoute = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> Reply:
        """Answer one question in a session; the turn is stored in memory.

        Without a `session_id` the question starts a new session, as a plain LLM call is
        independent of the last one; pass `reply.session_id` back to ask a follow-up.

        `route`: "auto" lets the router decide from the evidence; "local" never calls the
        large model; "large" always does (unless the collection is local-only). A question,
        user or session id holding a NUL character or a lone surrogate raises
        InvalidInputError naming it, as the HTTP API answers 400. `instructions`: your own
        system message, added to the prompt after the assistant's rules (too long for the
        prompt: InvalidInputError). `max_tokens`: a cap on the answer's tokens, local or
        large model; `reply.finish_reason` is "length" when the answer stopped at it."""
        chunks = self.stream(
            question,
            user_id=user_id,
            session_id=session_id,
            collection=collection,
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )
        return _final(chunks)

    def stream(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        collection: str | None = None,
        route: RequestedRoute = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ReplyChunk]:
        """The turn as it happens: stage chunks ("searching", "thinking", "escalating": no text),
        the answer's text as it is produced, and last the whole Reply. What the caller got
        wrong (see `ask`) is raised by this call, before any chunk."""
        session_id = new_session_id() if session_id is None else session_id
        _check_texts(question, user_id, session_id, instructions)
        return self.pipeline.turn(
            question,
            user_id=user_id,
            session_id=session_id,
            collection=self._collection(collection),
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )

    async def aask(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        collection: str | None = None,
        route: RequestedRoute = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> Reply:
        """`ask` without blocking the event loop; cancelling it stops the turn."""
        chunks = self.astream(
            question,
            user_id=user_id,
            session_id=session_id,
            collection=collection,
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )
        try:
            async for chunk in chunks:
                if chunk.reply is not None:
                    return chunk.reply
        finally:
            await chunks.aclose()
        raise AssertionError("the pipeline ended without a reply")

    async def astream(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        collection: str | None = None,
        route: RequestedRoute = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[ReplyChunk, None]:
        """`stream` for asyncio: the turn runs in a worker thread, as LangChain's default
        `astream` runs a sync model, and its chunks arrive as they are produced. Closing or
        cancelling the iterator stops the turn and frees the local model for the next one."""
        from assistant.threads import iterate_in_threads

        start = partial(
            self.stream,
            question,
            user_id=user_id,
            session_id=session_id,
            collection=collection,
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )
        async with aclosing(iterate_in_threads(start)) as chunks:  # closed with this one: the turn stops
            async for chunk in chunks:
                yield chunk

    def prepare(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str | None = None,
        collection: str | None = None,
        route: RequestedRoute = "auto",
        instructions: str | None = None,
        max_tokens: int | None = None,
    ) -> Prepared:
        """The first half of a turn, exactly as `ask` runs it (recall, condense, retrieve, gather
        the evidence, build the prompt), with nothing generated or stored: what the turn would
        retrieve (`query`, `passages`), the signals the router reads, and `outside`: why the
        documents do not answer it, when the router would decline before drafting."""
        session_id = new_session_id() if session_id is None else session_id
        _check_texts(question, user_id, session_id, instructions)
        return self.pipeline.prepare(
            question,
            user_id=user_id,
            session_id=session_id,
            collection=self._collection(collection),
            route=route,
            instructions=instructions,
            max_tokens=max_tokens,
        )

    @property
    def confidence_model(self) -> ConfidenceModel:
        """The router's confidence model in force."""
        return self.pipeline.policy.confidence

    def turns(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        route: str | None = None,
        turn_ids: list[int] | None = None,
    ) -> list[ReviewTurn]:
        """Answered turns, oldest first, of a user, a session, a route or by id (for review and evaluation)."""
        return self._settled().ratings.turns(user_id=user_id, session_id=session_id, route=route, turn_ids=turn_ids)

    def ratings(self, turn_ids: list[int] | None = None) -> list[StoredRating]:
        """People's ratings of answered turns."""
        return self._settled().ratings.ratings(turn_ids)

    def escalations(self, user_id: str | None = None, session_id: str | None = None) -> list[EscalationRecord]:
        """The large-model audit, most recent first: what was sent, where, when, at what cost."""
        return self.memory.escalations.list(user_id=user_id, session_id=session_id)

    def users(self) -> list[str]:
        """The ids of every user with something stored."""
        return self._settled().users()

    def sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        return self._settled().sessions(user_id)

    def history(self, user_id: str, session_id: str) -> list[StoredMessage]:
        return self._settled(user_id).messages(user_id, session_id)

    def delete_session(self, user_id: str, session_id: str) -> None:
        self._settled(user_id).delete_session(user_id, session_id)

    def summaries(self, user_id: str, session_id: str) -> list[StoredSummary]:
        """The rolling summaries written as the session's older turns left the prompt."""
        return self._settled(user_id).summaries(user_id, session_id)

    def export_session(self, user_id: str, session_id: str) -> dict[str, Any]:
        """The whole session as a JSON-ready dict (messages with all their fields, summaries)."""
        from memory.transfer import export_session

        return export_session(self._settled(user_id), user_id, session_id)

    def import_session(
        self, document: Mapping[str, Any], *, user_id: str | None = None, session_id: str | None = None
    ) -> tuple[str, str]:
        """Store an exported session, optionally under another user or id; returns (user_id, session_id)."""
        from memory.transfer import import_session

        return import_session(self.memory, dict(document), user_id=user_id, session_id=session_id)

    def delete_user(self, user_id: str) -> UserDeletion:
        """Delete a user and everything of theirs: sessions, messages, summaries and facts."""
        return self._settled(user_id).delete_user(user_id)

    # What users told us about themselves ---------------------------------------------------

    def facts(self, user_id: str) -> list[Fact]:
        """Facts and preferences remembered about a user, most recent first."""
        return self._settled(user_id).facts.list(user_id)

    def remember(self, user_id: str, text: str, *, kind: str = "fact") -> Fact:
        """Store a fact ("runs the billing database") or a preference ("answer briefly") yourself."""
        return self._settled(user_id).facts.add(user_id, kind, check_text("fact", text))

    def edit_fact(self, user_id: str, fact_id: int, text: str | None = None, *, kind: str | None = None) -> Fact:
        checked = None if text is None else check_text("fact", text)
        return self._settled(user_id).facts.edit(user_id, fact_id, checked, kind)

    def forget(self, user_id: str, fact_id: int | None = None) -> int:
        """Forget one fact, or all of a user's facts when no id is given; returns how many."""
        if fact_id is None:
            return self._settled(user_id).facts.forget_all(user_id)
        self._settled(user_id).facts.forget(user_id, fact_id)
        return 1

    def latest_session(self, user_id: str) -> SessionInfo | None:
        """The user's most recently active session (`ask --continue`, `chat`), or None if they have none."""
        latest = self._settled(user_id).sessions(user_id, limit=1)
        return latest[0] if latest else None

    def _settled(self, user_id: str | None = None) -> SQLMemory:
        """The memory, once the work that follows the answers so far (facts, summaries) is in it:
        the answers to `user_id`, or to everyone."""
        self.pipeline.followups.wait(user_id)
        return self.memory

    def _collection(self, name: str | None) -> str:
        """The collection a call means: the one named; else default_collection when it exists, none
        does, or it was set to another name; else the only collection there is."""
        if name:
            return check_collection_name(name)
        default = self.settings.default_collection
        shared = [stored for stored in self.index.names() if not is_private_name(stored)]
        if not shared or default in shared or default != type(self.settings).model_fields["default_collection"].default:
            return default
        if len(shared) == 1:
            return shared[0]
        raise UnknownCollectionError(default, shared, chosen=False)


def build_assistant(
    settings: Settings | None = None,
    *,
    fallback: BaseChatModel | None = None,
    llm: BaseChatModel | None = None,
    embeddings: Embeddings | None = None,
) -> Assistant:
    """The assistant the settings describe; `llm`, `embeddings` and `fallback` replace the defaults."""
    return Assistant.from_settings(settings, fallback=fallback, llm=llm, embeddings=embeddings)


def _check_texts(question: str, user_id: str, session_id: str, instructions: str | None = None) -> None:
    check_text("question", question)
    check_text("user id", user_id)
    check_text("session id", session_id)
    if instructions is not None:
        check_text("instructions", instructions)


def _final(chunks: Iterator[ReplyChunk]) -> Reply:
    for chunk in chunks:
        if chunk.reply is not None:
            return chunk.reply
    raise AssertionError("the pipeline ended without a reply")
