"""The Assistant facade: ingest documents, ask questions, manage sessions.

It delegates: ingestion to `retrievers`, turns to `chains.pipeline`, history to
`memory`. It receives its parts; `Assistant.from_settings()` builds the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from assistant.errors import CollectionExistsError
from assistant.settings import Settings
from chains.confidence import ConfidenceModel
from chains.escalate import Budgets, Escalator, RetryPolicy
from chains.facts import FactExtractor
from chains.history import ConversationRecall
from chains.pipeline import AnswerPipeline
from chains.prompt import PromptBudget, PromptBuilder
from chains.reply import Reply, ReplyChunk
from chains.route import RequestedRoute, RoutePolicy, Thresholds
from chains.summarize import Summarizer
from memory.audit import EscalationRecord
from memory.facts import Fact
from memory.store import SessionInfo, SQLMemory, StoredMessage, StoredSummary, UserDeletion, check_text
from memory.transfer import export_session, import_session
from retrievers.catalog import CollectionInfo
from retrievers.embedder import EmbedderSpec
from retrievers.index import DocumentIndex, ReindexReport
from retrievers.naming import (
    check_collection_name,
    check_new_collection_name,
    confusable_with,
    is_private_name,
    private_name,
)
from retrievers.report import IngestProgress, IngestReport
from retrievers.retriever import PassageRetriever

if TYPE_CHECKING:
    from langchain_core.documents import Document

__all__ = ["Assistant"]


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        min_relevance=settings.min_relevance,
        answer_confidence=settings.answer_confidence,
        decline_confidence=settings.decline_confidence,
        min_context_fit=settings.min_context_fit,
    )


def budgets(settings: Settings) -> Budgets:
    return Budgets(
        calls_per_session=settings.budget_calls_per_session,
        tokens_per_session=settings.budget_tokens_per_session,
        calls_per_user_per_day=settings.budget_calls_per_user_per_day,
        tokens_per_user_per_day=settings.budget_tokens_per_user_per_day,
        calls_per_day=settings.budget_calls_per_day,
        tokens_per_day=settings.budget_tokens_per_day,
    )


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
        summarizer = (
            Summarizer(
                llm if settings.history_summary == "model" else None,
                count_llm_tokens,
                max_tokens=settings.summary_token_budget,
            )
            if settings.history_summary != "off"
            else None
        )
        self.pipeline = AnswerPipeline(
            llm=llm,
            count_tokens=count_llm_tokens,
            retriever=self.retriever,
            memory=memory,
            recall=ConversationRecall(
                memory,
                recent_messages=settings.history_turns,
                summarizer=summarizer,
                count_tokens=count_llm_tokens,
                recall_facts=settings.remember_facts,
                fact_min_similarity=settings.fact_min_similarity,
            ),
            facts=FactExtractor.for_model(llm) if settings.remember_facts else None,
            policy=RoutePolicy(
                thresholds(settings),
                has_large=fallback is not None,
                confidence=ConfidenceModel.load(settings.confidence_model),
            ),
            prompt=PromptBuilder(
                count_llm_tokens,
                PromptBudget(
                    context_tokens=settings.llm_context_tokens,
                    answer_tokens=settings.llm_max_answer_tokens,
                    history_tokens=settings.history_token_budget,
                    passage_tokens=settings.passage_token_budget,
                    summary_tokens=settings.summary_token_budget,
                    facts_tokens=settings.facts_token_budget,
                ),
            ),
            escalator=Escalator(
                fallback,
                memory.escalations,
                count_tokens=count_llm_tokens,
                budgets=budgets(settings),
                retry=RetryPolicy(settings.fallback_deadline_s, settings.fallback_backoff_s),
                answer_tokens=settings.fallback_max_tokens,
            )
            if fallback is not None
            else None,
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
        if owner is None:
            shared = [n for n in self.index.names() if not is_private_name(n)]
            like = confusable_with(collection, shared)
            if like is not None and like != collection:  # the same name: the catalog says it exists
                raise CollectionExistsError(collection, like=like)
            stored = check_new_collection_name(collection)
        else:
            stored = private_name(check_new_collection_name(collection, private=True), owner)
        try:
            return self.index.create(
                stored, embedder, local_only=local_only, owner=owner, created_by=created_by or owner
            )
        except CollectionExistsError:
            raise CollectionExistsError(collection) from None  # named as the caller named it, not as stored

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

    def retriever(self, collection: str | None = None) -> PassageRetriever:
        """A LangChain retriever over one collection (raises if it does not exist)."""
        return self.index.retriever(self._collection(collection), self.settings.top_k)

    def search(self, query: str, collection: str | None = None) -> list[Document]:
        return self.retriever(collection).invoke(query)

    # Conversation ----------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str = "default",
        collection: str | None = None,
        route: RequestedRoute = "auto",
    ) -> Reply:
        """Answer one question in a session; the turn is stored in memory.

        `route`: "auto" lets the router decide from the evidence; "local" never calls the
        large model; "large" always does (unless the collection is local-only). A question,
        user or session id holding a NUL character or a lone surrogate raises
        InvalidInputError naming it, as the HTTP API answers 400."""
        for chunk in self.stream(question, user_id=user_id, session_id=session_id, collection=collection, route=route):
            if chunk.reply is not None:
                return chunk.reply
        raise AssertionError("the pipeline ended without a reply")

    def stream(
        self,
        question: str,
        *,
        user_id: str = "default",
        session_id: str = "default",
        collection: str | None = None,
        route: RequestedRoute = "auto",
    ) -> Iterator[ReplyChunk]:
        """The answer's text as it is produced; the last chunk carries the whole Reply."""
        check_text("question", question)
        check_text("user id", user_id)
        check_text("session id", session_id)
        return self.pipeline.turn(
            question, user_id=user_id, session_id=session_id, collection=self._collection(collection), route=route
        )

    def escalations(self, user_id: str | None = None, session_id: str | None = None) -> list[EscalationRecord]:
        """The large-model audit, most recent first: what was sent, where, when, at what cost."""
        return self.memory.escalations.list(user_id=user_id, session_id=session_id)

    def sessions(self, user_id: str | None = None) -> list[SessionInfo]:
        return self.memory.sessions(user_id)

    def history(self, user_id: str, session_id: str) -> list[StoredMessage]:
        return self.memory.messages(user_id, session_id)

    def delete_session(self, user_id: str, session_id: str) -> None:
        self.memory.delete_session(user_id, session_id)

    def summaries(self, user_id: str, session_id: str) -> list[StoredSummary]:
        """The rolling summaries written as the session's older turns left the prompt."""
        return self.memory.summaries(user_id, session_id)

    def export_session(self, user_id: str, session_id: str) -> dict[str, Any]:
        """The whole session as a JSON-ready dict (messages with all their fields, summaries)."""
        return export_session(self.memory, user_id, session_id)

    def import_session(
        self, document: Mapping[str, Any], *, user_id: str | None = None, session_id: str | None = None
    ) -> tuple[str, str]:
        """Store an exported session, optionally under another user or id; returns (user_id, session_id)."""
        return import_session(self.memory, dict(document), user_id=user_id, session_id=session_id)

    def delete_user(self, user_id: str) -> UserDeletion:
        """Delete a user and everything of theirs: sessions, messages, summaries and facts."""
        return self.memory.delete_user(user_id)

    # What users told us about themselves ---------------------------------------------------

    def facts(self, user_id: str) -> list[Fact]:
        """Facts and preferences remembered about a user, most recent first."""
        return self.memory.facts.list(user_id)

    def remember(self, user_id: str, text: str, *, kind: str = "fact") -> Fact:
        """Store a fact ("runs the billing database") or a preference ("answer briefly") yourself."""
        return self.memory.facts.add(user_id, kind, check_text("fact", text))

    def edit_fact(self, user_id: str, fact_id: int, text: str | None = None, *, kind: str | None = None) -> Fact:
        return self.memory.facts.edit(user_id, fact_id, None if text is None else check_text("fact", text), kind)

    def forget(self, user_id: str, fact_id: int | None = None) -> int:
        """Forget one fact, or all of a user's facts when no id is given; returns how many."""
        if fact_id is None:
            return self.memory.facts.forget_all(user_id)
        self.memory.facts.forget(user_id, fact_id)
        return 1

    def _collection(self, name: str | None) -> str:
        return check_collection_name(name or self.settings.default_collection)
