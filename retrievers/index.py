"""The documents side of an assistant: collections and their lifecycle (create,
describe, ingest, reindex, check, delete), with search handed to retrievers.search.

One object over the SQL catalog (retrievers.catalog: which collections; retrievers.ledger:
what they hold; retrievers.keyword_index), the Chroma store (the vectors) and the
embedders (which model embeds which collection). It takes the settings groups
DocumentSettings and RetrievalSettings; writers take the collection's lease. The
ingestion side (parsers, splitter, writer) is imported by `ingest` and `splitter`, so
that a process that only answers never imports it.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings
from sqlalchemy import Engine

from assistant.capabilities import HasTokenLimit, token_counter
from assistant.errors import CollectionExistsError
from assistant.settings import DocumentSettings, RetrievalSettings
from memory.db import Database
from memory.migrate import upgrade
from retrievers.catalog import Catalog, CollectionInfo, CollectionRow
from retrievers.embedder import EmbedderSpec
from retrievers.embedders import Embedders
from retrievers.hybrid import Retrieval
from retrievers.keyword_index import KeywordIndex
from retrievers.keywords import KeywordScheme
from retrievers.lease import CollectionLease
from retrievers.ledger import ChunkRow, DocumentRow, Ledger
from retrievers.naming import (
    check_collection_name,
    check_new_collection_name,
    confusable_with,
    is_private_name,
    private_name,
)
from retrievers.passage import Passage
from retrievers.report import EMBEDDING, LOADING_EMBEDDER, WRITING, IngestProgress, IngestReport
from retrievers.rerank import Reranker
from retrievers.retriever import PassageRetriever
from retrievers.search import HybridSearch
from retrievers.store import ChunkStore
from retrievers.summaries import SummaryStore

if TYPE_CHECKING:
    from retrievers.reading import LoaderFactory
    from retrievers.splitter import TokenSplitter

__all__ = ["DocumentIndex", "IndexCheck", "ReindexReport"]


def _chroma_name(name: str) -> str:
    # A fresh name for every index built: a Chroma collection left by anything else
    # (an older version, another app on a shared server) is never picked up by mistake.
    return f"{name[:480]}.{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class ReindexReport:
    collection: str
    old_embedder: str
    new_embedder: str
    chunks: int
    seconds: float


@dataclass(frozen=True)
class IndexCheck:
    """SQL, Chroma and the keyword index compared: all lists empty means they agree exactly."""

    live: int
    missing_in_chroma: list[str]
    orphans_in_chroma: list[str]
    unfinished_in_sql: list[str]  # pending or deleting chunks: an ingest is running, or was killed
    missing_in_keywords: list[str]
    orphans_in_keywords: list[str]
    writer: str | None = None  # who holds the write lock now: an ingest (or reindex) at work

    @property
    def consistent(self) -> bool:
        return not (
            self.missing_in_chroma
            or self.orphans_in_chroma
            or self.unfinished_in_sql
            or self.missing_in_keywords
            or self.orphans_in_keywords
        )

    @property
    def interrupted(self) -> bool:
        """An ingest was killed midway: running it again completes or undoes its writes."""
        return bool(self.unfinished_in_sql) and self.writer is None

    @property
    def needs_reindex(self) -> bool:
        """Live chunks lack vectors or keywords, or Chroma holds vectors no ingest left: only
        rebuilding the index from the catalog (`reindex`) repairs that."""
        unfinished = set(self.unfinished_in_sql)
        return bool(
            self.missing_in_chroma
            or any(i not in unfinished for i in self.orphans_in_chroma)
            or self.missing_in_keywords
            or self.orphans_in_keywords
        )


class DocumentIndex:
    """Collections in the catalog database `engine` (migrated first) and the Chroma `store`."""

    def __init__(
        self,
        engine: Engine,
        store: ChunkStore,
        embedders: Embedders,
        *,
        documents: DocumentSettings | None = None,
        retrieval: RetrievalSettings | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        upgrade(engine)
        db = Database(engine)
        self.keywords = KeywordIndex(db)
        self.catalog = Catalog(db, self.keywords)
        self.ledger = Ledger(db, self.keywords)
        self.lease = CollectionLease(db)
        self.summaries = SummaryStore(db)
        self.store = store
        self.embedders = embedders
        self.document_settings = documents or DocumentSettings()
        self.searcher = HybridSearch(
            self.catalog,
            self.ledger,
            self.keywords,
            store,
            embedders,
            retrieval or RetrievalSettings(),
            keyword_language=self.document_settings.keyword_language,
            reranker=reranker,
        )

    @property
    def retrieval_settings(self) -> RetrievalSettings:
        return self.searcher.settings

    # Collections -----------------------------------------------------------------------

    def names(self, visible_to: str | None = None) -> list[str]:
        return self.catalog.names(visible_to)

    def _create(
        self, name: str, embedder: EmbedderSpec | None, local_only: bool, owner: str | None, created_by: str | None
    ) -> CollectionInfo:
        """A new, empty collection under its stored name, embedded by `embedder` (default: the settings' one)."""
        check_collection_name(name)
        info = self.embedders.info(self.embedders.chosen(embedder))
        chroma_name = _chroma_name(name)
        scheme = KeywordScheme(language=self.document_settings.keyword_language)
        self.catalog.create(
            name, chroma_name, info, local_only=local_only, keywords=scheme, owner=owner, created_by=created_by
        )
        self.store.create(chroma_name, info.name, info.dimension)
        return self.catalog.info(name)

    def add(
        self,
        name: str,
        embedder: EmbedderSpec | None = None,
        *,
        local_only: bool = False,
        owner: str | None = None,
        created_by: str | None = None,
    ) -> CollectionInfo:
        """A new, empty collection, named as a user names it: a private one (`owner` set) is stored under
        the owner's scope (retrievers.naming), and a shared name that reads like an existing
        shared one ("billing_ops" beside "billing-ops") is refused."""
        if owner is None:
            shared = [n for n in self.names() if not is_private_name(n)]
            like = confusable_with(name, shared)
            if like is not None and like != name:  # the same name: the catalog says it exists
                raise CollectionExistsError(name, like=like)
            stored = check_new_collection_name(name)
        else:
            stored = private_name(check_new_collection_name(name, private=True), owner)
        try:
            return self._create(stored, embedder, local_only, owner, created_by or owner)
        except CollectionExistsError:
            raise CollectionExistsError(name) from None  # named as the caller named it, not as stored

    def _ensure(self, name: str) -> CollectionRow:
        check_collection_name(name)
        found = self.catalog.get(name)
        if found is None:
            self._create(name, None, False, None, None)
            found = self.catalog.require(name)
        return found

    def set_local_only(self, name: str, local_only: bool = True) -> CollectionInfo:
        self.catalog.set_local_only(check_collection_name(name), local_only)
        return self.catalog.info(name)

    def describe(self, name: str) -> CollectionInfo:
        return self.catalog.info(check_collection_name(name))

    def delete(self, name: str) -> None:
        col = self.catalog.require(check_collection_name(name))
        with self.lease.held(col):  # not while someone writes it
            for chroma_name in [col.chroma_name, *([col.building["chroma_name"]] if col.building else [])]:
                self.store.drop(chroma_name)
            self.catalog.delete(col.id)  # its lease goes with its row

    def sample_chunks(self, name: str, size: int, seed: int = 0) -> list[str]:
        """`size` chunk texts drawn at random, the same ones for the same seed and contents."""
        col = self.catalog.require(check_collection_name(name))
        collection = self.store.get(col.chroma_name)
        ids = sorted(self.store.ids(collection))
        chosen = random.Random(seed).sample(ids, min(size, len(ids)))
        texts = self.store.texts(collection, chosen)
        return [texts[i] for i in chosen if i in texts]

    def texts(self, name: str, chunk_ids: list[str]) -> list[str]:
        """The whole texts of these chunks, in order (a chunk no longer stored is left out)."""
        col = self.catalog.require(check_collection_name(name))
        found = self.store.texts(self.store.get(col.chroma_name), chunk_ids) if chunk_ids else {}
        return [found[i] for i in chunk_ids if i in found]

    def documents(self, name: str) -> tuple[CollectionRow, list[DocumentRow]]:
        """The collection and its complete documents, by source (for summaries)."""
        col = self.catalog.require(check_collection_name(name))
        return col, sorted(self.ledger.documents(col.id).values(), key=lambda d: d.source)

    def document_chunks(self, col: CollectionRow, document_id: int) -> list[ChunkRow]:
        """A document's live chunks in document order: their texts and metadata (location, heading...)."""
        return self.ledger.document_chunks(col.id, document_id)

    def embeddings_for(self, name: str) -> Embeddings:
        return self.searcher.embeddings_for(name)

    # Ingestion ------------------------------------------------------------------------

    def splitter(self, embeddings: Embeddings) -> TokenSplitter:
        from retrievers.splitter import TokenSplitter

        return TokenSplitter(
            token_counter(embeddings),
            chunk_tokens=self.document_settings.chunk_tokens,
            overlap_tokens=self.document_settings.chunk_overlap_tokens,
            max_tokens=int(embeddings.max_tokens) if isinstance(embeddings, HasTokenLimit) else 256,
        )

    def ingest(
        self,
        path: Path,
        name: str,
        *,
        loaders: Mapping[str, LoaderFactory] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        from retrievers.ingest import Ingestor

        col = self._ensure(name)
        embeddings = self.embedders.for_collection(col)
        ingestor = Ingestor(
            self.ledger,
            self.keywords,
            self.lease,
            self.store,
            embeddings,
            self.splitter(embeddings),
            self.document_settings,
            loaders=loaders,
        )
        return ingestor.ingest(path, col, on_progress=on_progress)

    def reindex(
        self,
        name: str,
        embedder: EmbedderSpec | None = None,
        *,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> ReindexReport:
        """Re-embed every chunk with `embedder` into a new Chroma collection, then switch.

        Queries keep using the old index until the switch, one SQL transaction. The
        chunks' text comes from the catalog, so no document is parsed again. A killed
        reindex leaves the old index serving; running it again starts over.
        """
        from retrievers.splitter import embedding_text

        started = time.perf_counter()
        col = self.catalog.require(check_collection_name(name))
        embeddings = self.embedders.chosen(embedder)
        info = self.embedders.info(embeddings)
        with self.lease.held(col) as holding:
            col = self.catalog.require(name)
            if col.building:
                self.store.drop(col.building["chroma_name"])
            target = _chroma_name(name)
            self.catalog.set_building(col.id, {"chroma_name": target, "embedder": info.name})
            chroma = self.store.create(target, info.name, info.dimension)
            total = self.ledger.live_count(col.id)
            done = 0

            def progress(phase: str, batch_done: int = 0, batch_total: int = 0) -> None:
                if on_progress:
                    rate = done / max(time.perf_counter() - started, 1e-6)
                    on_progress(IngestProgress(done, total, done, rate, name, phase, batch_done, batch_total, "chunks"))

            progress(LOADING_EMBEDDER)  # the first embedding call loads the model
            step = self.document_settings.embedding_batch_size
            for page in self.ledger.iter_live_chunks(col.id, page=4 * step):
                vectors: list[list[float]] = []
                for start in range(0, len(page), step):
                    texts = [embedding_text(c.meta, c.text) for c in page[start : start + step]]
                    vectors += embeddings.embed_documents(texts)
                    progress(EMBEDDING if len(vectors) < len(page) else WRITING, len(vectors), len(page))
                self.store.upsert(chroma, [c.id for c in page], [c.text for c in page], [c.meta for c in page], vectors)
                done += len(page)
                holding.renew()
                progress(WRITING, len(page), len(page))
            language = self.document_settings.keyword_language
            self.keywords.rebuild(col.id, KeywordScheme(language=language), self.ledger.keyword_pages(col.id))
            self.catalog.switch(col.id, target, info, col.generation + 1)
            self.store.drop(col.chroma_name)
        return ReindexReport(name, col.embedder.name, info.name, done, time.perf_counter() - started)

    def check(self, name: str) -> IndexCheck:
        """Compare the catalog with Chroma, id by id."""
        col = self.catalog.require(check_collection_name(name))
        live = {c.id for page in self.ledger.iter_live_chunks(col.id, page=5000) for c in page}
        stored = self.store.ids(self.store.get(col.chroma_name))
        keywords = self.keywords.ids(col.id) if col.keywords else live
        return IndexCheck(
            live=len(live),
            missing_in_chroma=sorted(live - stored),
            orphans_in_chroma=sorted(stored - live),
            unfinished_in_sql=self.ledger.unfinished(col.id),
            missing_in_keywords=sorted(live - keywords),
            orphans_in_keywords=sorted(keywords - live),
            writer=self.lease.holder(col.id),
        )

    # Search (retrievers.search) ---------------------------------------------------------

    def search(self, name: str, query: str, k: int) -> list[Passage]:
        return self.retrieve(name, query, k).passages

    def retrieve(self, name: str, query: str, k: int, options: RetrievalSettings | None = None) -> Retrieval:
        """The `k` best passages for `query` and the evidence behind them (see retrievers.hybrid)."""
        return self.searcher.retrieve(name, query, k, options)

    def retriever(self, name: str, k: int) -> PassageRetriever:
        col = self.catalog.require(check_collection_name(name))
        return PassageRetriever(searcher=self.searcher, collection=name, k=k, local_only=col.local_only)
