"""The documents side of an assistant: collections, ingestion, reindexing and search.

One object over the SQL catalog (what should be indexed), the Chroma store (the
vectors) and the embedders (which model embeds which collection). A collection is
embedded by the model it records: new collections take the default embedder from
settings, `reindex` moves a collection to another one, and embeddings passed in from
Python must match the collection they query.
"""

from __future__ import annotations

import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from assistant.errors import EmbedderMismatchError
from retrievers.catalog import Catalog, CollectionInfo, CollectionRow
from retrievers.embedder import EmbedderInfo, EmbedderSpec, describe_embeddings, load_embedder
from retrievers.hybrid import Retrieval, SearchOptions, expand, fuse, max_fused, near_duplicate, supported
from retrievers.ingest import IngestOptions, Ingestor, LoaderFactory
from retrievers.keywords import KeywordScheme, is_identifier, query_terms, terms_of
from retrievers.lease import CollectionLease
from retrievers.naming import check_collection_name
from retrievers.passage import Passage
from retrievers.report import IngestProgress, IngestReport
from retrievers.rerank import Reranker
from retrievers.splitter import TokenSplitter, embedding_text
from retrievers.store import ChunkStore

if TYPE_CHECKING:
    from retrievers.retriever import PassageRetriever

__all__ = ["DocumentIndex", "Embedders", "IndexCheck", "ReindexReport"]

log = logging.getLogger(__name__)


def _approximate_tokens(text: str) -> int:
    # For embeddings that expose no tokenizer: about four characters a token.
    return max(1, len(text) // 4)


def _chroma_name(name: str) -> str:
    # A fresh name for every index built: a Chroma collection left by anything else
    # (an older version, another app on a shared server) is never picked up by mistake.
    return f"{name[:480]}.{uuid.uuid4().hex[:12]}"


class Embedders:
    """Loads (once) the embedder a collection records.

    `override`: embeddings passed in from Python. They embed new collections and may
    query only collections they built; anything else is an EmbedderMismatchError.
    """

    def __init__(
        self, default: EmbedderSpec, *, cache_dir: Path, batch_size: int = 64, override: Embeddings | None = None
    ) -> None:
        self.default_spec = default
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.override = override
        self._loaded: dict[EmbedderSpec, Embeddings] = {}
        self._override_info: EmbedderInfo | None = None

    def load(self, spec: EmbedderSpec) -> Embeddings:
        if spec not in self._loaded:
            self._loaded[spec] = load_embedder(spec, cache_dir=self.cache_dir, batch_size=self.batch_size)
        return self._loaded[spec]

    def default(self) -> Embeddings:
        return self.override if self.override is not None else self.load(self.default_spec)

    def info(self, embeddings: Embeddings) -> EmbedderInfo:
        if embeddings is self.override:
            if self._override_info is None:
                self._override_info = describe_embeddings(embeddings)
            return self._override_info
        return describe_embeddings(embeddings)

    def for_collection(self, col: CollectionRow) -> Embeddings:
        recorded = col.embedder
        if self.override is not None:
            mine = self.info(self.override)
            if (mine.name, mine.dimension) != (recorded.name, recorded.dimension):
                raise EmbedderMismatchError(col.name, recorded.name, mine.name)
            return self.override
        if recorded.spec is None:
            raise EmbedderMismatchError(col.name, recorded.name, self.default_spec.name)
        return self.load(recorded.spec)


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
    def __init__(
        self,
        catalog: Catalog,
        store: ChunkStore,
        embedders: Embedders,
        *,
        chunk_tokens: int = 180,
        overlap_tokens: int = 30,
        options: IngestOptions | None = None,
        search: SearchOptions | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.embedders = embedders
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.options = options or IngestOptions()
        self.search_options = search or SearchOptions()
        self.reranker = reranker
        self._warned: set[str] = set()

    # Collections -----------------------------------------------------------------------

    def names(self, visible_to: str | None = None) -> list[str]:
        return self.catalog.names(visible_to)

    def create(
        self,
        name: str,
        embedder: EmbedderSpec | None = None,
        *,
        local_only: bool = False,
        owner: str | None = None,
        created_by: str | None = None,
    ) -> CollectionInfo:
        """A new, empty collection embedded by `embedder` (default: the settings' one).

        `owner`: the user it is private to (None: shared); `created_by`: the user who may write it."""
        check_collection_name(name)
        embeddings = self.embedders.load(embedder) if embedder else self.embedders.default()
        info = self.embedders.info(embeddings)
        chroma_name = _chroma_name(name)
        scheme = KeywordScheme(language=self.options.keyword_language)
        self.catalog.create(
            name, chroma_name, info, local_only=local_only, keywords=scheme, owner=owner, created_by=created_by
        )
        self.store.create(chroma_name, info.name, info.dimension)
        return self.catalog.info(name)

    def _ensure(self, name: str) -> CollectionRow:
        check_collection_name(name)
        found = self.catalog.get(name)
        if found is None:
            self.create(name)
            found = self.catalog.require(name)
        return found

    def set_local_only(self, name: str, local_only: bool = True) -> CollectionInfo:
        self.catalog.set_local_only(check_collection_name(name), local_only)
        return self.catalog.info(name)

    def describe(self, name: str) -> CollectionInfo:
        return self.catalog.info(check_collection_name(name))

    def delete(self, name: str) -> None:
        col = self.catalog.require(check_collection_name(name))
        owner = CollectionLease.new_owner()
        self.catalog.lease.acquire(col, owner, self.options.lock_ttl_s)  # not while someone writes it
        try:
            for chroma_name in [col.chroma_name, *([col.building["chroma_name"]] if col.building else [])]:
                self.store.drop(chroma_name)
        except BaseException:
            self.catalog.lease.release(col.id, owner)
            raise
        self.catalog.delete(col.id)

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

    def embeddings_for(self, name: str) -> Embeddings:
        return self.embedders.for_collection(self.catalog.require(check_collection_name(name)))

    # Ingestion ------------------------------------------------------------------------

    def splitter(self, embeddings: Embeddings) -> TokenSplitter:
        return TokenSplitter(
            getattr(embeddings, "count_tokens", _approximate_tokens),
            chunk_tokens=self.chunk_tokens,
            overlap_tokens=self.overlap_tokens,
            max_tokens=int(getattr(embeddings, "max_tokens", 256)),
        )

    def ingest(
        self,
        path: Path,
        name: str,
        *,
        loaders: Mapping[str, LoaderFactory] | None = None,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        col = self._ensure(name)
        embeddings = self.embedders.for_collection(col)
        ingestor = Ingestor(
            self.catalog, self.store, embeddings, self.splitter(embeddings), self.options, loaders=loaders
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
        started = time.perf_counter()
        col = self.catalog.require(check_collection_name(name))
        embeddings = self.embedders.load(embedder) if embedder else self.embedders.default()
        info = self.embedders.info(embeddings)
        owner = CollectionLease.new_owner()
        self.catalog.lease.acquire(col, owner, self.options.lock_ttl_s)
        try:
            col = self.catalog.require(name)
            if col.building:
                self.store.drop(col.building["chroma_name"])
            target = _chroma_name(name)
            self.catalog.set_building(col.id, {"chroma_name": target, "embedder": info.name})
            chroma = self.store.create(target, info.name, info.dimension)
            total = self.catalog.live_count(col.id)
            done = 0
            for page in self.catalog.iter_live_chunks(col.id, page=self.options.batch_chunks):
                vectors = embeddings.embed_documents([embedding_text(c.meta, c.text) for c in page])
                self.store.upsert(chroma, [c.id for c in page], [c.text for c in page], [c.meta for c in page], vectors)
                done += len(page)
                self.catalog.lease.renew(col.id, owner, self.options.lock_ttl_s)
                if on_progress:
                    elapsed = max(time.perf_counter() - started, 1e-6)
                    on_progress(IngestProgress(done, total, done, done / elapsed, name))
            self.catalog.rebuild_keywords(col.id, KeywordScheme(language=self.options.keyword_language))
            self.catalog.switch(col.id, target, info, col.generation + 1)
            self.store.drop(col.chroma_name)
        finally:
            self.catalog.lease.release(col.id, owner)
        return ReindexReport(name, col.embedder.name, info.name, done, time.perf_counter() - started)

    # Search ----------------------------------------------------------------------------

    def search(self, name: str, query: str, k: int) -> list[Passage]:
        return self.retrieve(name, query, k).passages

    def retrieve(self, name: str, query: str, k: int, options: SearchOptions | None = None) -> Retrieval:
        """The `k` best passages for `query` and the evidence behind them (see retrievers.hybrid)."""
        opts = options or self.search_options
        col = self.catalog.require(check_collection_name(name))
        embeddings = self.embedders.for_collection(col)
        scheme = col.keywords if col.keywords and col.keywords.current else None
        language = scheme.language if scheme else self.options.keyword_language
        terms = query_terms(query, language)
        vector = embeddings.embed_query(query)
        chroma = self.store.get(col.chroma_name)
        wanted = max(opts.candidates, k)
        dense = self.store.search(chroma, vector, wanted) if opts.mode != "keyword" else []
        keyword: list[str] = []
        exact: list[str] = []
        unknown: list[str] = []
        identifiers = [t for t in terms if is_identifier(t)]
        if opts.mode != "dense":
            if scheme is None:
                self._warn_unbuilt(name)
            else:
                keyword = [i for i, _ in self.catalog.search_keywords(col.id, terms, wanted)]
                if identifiers:
                    exact = [i for i, _ in self.catalog.search_keywords(col.id, identifiers, wanted, every=True)]
                    unknown = self._unknown(col.id, identifiers, language) if not exact else []
        dense_ids = [p.chunk_id for p in dense]
        searched = scheme is not None and opts.mode != "dense"
        weights = (
            opts.dense_weight if opts.mode == "hybrid" else float(opts.mode == "dense"),
            (opts.keyword_weight if opts.mode == "hybrid" else 1.0) if searched else 0.0,
            opts.identifier_weight if searched and exact else 0.0,
        )
        # Every candidate's cosine: keyword-only finds are fetched with their stored vectors.
        found = {p.chunk_id: p for p in dense}
        extra = [i for i in dict.fromkeys([*keyword, *exact]) if i not in found]
        found.update({p.chunk_id: p for p in self.store.fetch(chroma, extra, vector)})
        cosines = [(i, found[i].score) for i in [*dense_ids, *extra] if i in found]
        scores = fuse(cosines, keyword, exact, weights, opts.fusion, opts.rrf_k)
        fused = supported(scores, {i: p.source for i, p in found.items()}, opts.source_support)
        dense_rank = {i: n for n, i in enumerate(dense_ids, start=1)}
        keyword_rank = {i: n for n, i in enumerate(keyword, start=1)}
        ranked = [
            replace(found[i], fused=score, dense_rank=dense_rank.get(i), keyword_rank=keyword_rank.get(i))
            for i, score in fused[: max(3 * k, k + 10)]
            if i in found
        ]
        if self.reranker is not None:
            ranked = self.reranker.rerank(query, ranked)
        passages = self._readable(col, ranked, k, embeddings, opts)
        return Retrieval(
            query,
            passages,
            dense=dense_ids,
            keyword=keyword,
            exact=exact,
            terms=terms,
            identifiers=identifiers if searched else [],
            unknown=unknown,
            language=language,
            max_fused=max_fused(weights),
        )

    def _unknown(self, collection_id: int, identifiers: list[str], language: str) -> list[str]:
        """The identifiers no chunk holds. A dotted name counts as known when each of its parts is:
        manuals write "the wait_event column of pg_stat_activity", questions pg_stat_activity.wait_event."""
        unknown = self.catalog.unknown_terms(collection_id, identifiers)
        # A part's first term is the part as written (stemmed when it is a plain word).
        dotted = {
            t: [(terms_of(p, language) or [p])[0] for p in re.split(r"[.:]", t) if p] for t in unknown if "." in t
        }
        if not dotted:
            return unknown
        missing = set(
            self.catalog.unknown_terms(collection_id, sorted({p for parts in dotted.values() for p in parts}))
        )
        return [t for t in unknown if t not in dotted or any(p in missing for p in dotted[t])]

    def _readable(
        self, col: CollectionRow, ranked: list[Passage], k: int, embeddings: Embeddings, opts: SearchOptions
    ) -> list[Passage]:
        """The best `k` of `ranked`, grown by their neighbours, without near-duplicates."""
        count = getattr(embeddings, "count_tokens", _approximate_tokens)
        around = (
            self.catalog.around(col.id, [p.chunk_id for p in ranked[: 2 * k]], opts.neighbours, opts.neighbours)
            if opts.neighbours > 0
            else {}
        )
        kept: list[Passage] = []
        held: set[str] = set()
        for passage in ranked:
            if len(kept) == k:
                break
            if passage.chunk_id in held:
                continue
            free = [c for c in around.get(passage.chunk_id, []) if c.id not in held]  # no text twice
            grown, ids = (
                expand(passage, free, count, opts.passage_tokens)
                if passage.chunk_id in around
                else (passage, {passage.chunk_id})
            )
            if near_duplicate(grown, kept, opts.dedupe):
                continue
            kept.append(grown)
            held |= ids
        return kept

    def _warn_unbuilt(self, name: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            log.warning(
                "collection %r has no keyword index yet (made before it existed): searching by meaning only; "
                "run `assistant reindex %s` or ingest into it to build one",
                name,
                name,
            )

    def retriever(self, name: str, k: int) -> PassageRetriever:
        from retrievers.retriever import PassageRetriever

        col = self.catalog.require(check_collection_name(name))
        return PassageRetriever(index=self, collection=name, k=k, local_only=col.local_only)

    def check(self, name: str) -> IndexCheck:
        """Compare the catalog with Chroma, id by id."""
        col = self.catalog.require(check_collection_name(name))
        live = {c.id for page in self.catalog.iter_live_chunks(col.id, page=5000) for c in page}
        stored = self.store.ids(self.store.get(col.chroma_name))
        keywords = self.catalog.keyword_ids(col.id) if col.keywords else live
        return IndexCheck(
            live=len(live),
            missing_in_chroma=sorted(live - stored),
            orphans_in_chroma=sorted(stored - live),
            unfinished_in_sql=self.catalog.unfinished(col.id),
            missing_in_keywords=sorted(live - keywords),
            orphans_in_keywords=sorted(keywords - live),
            writer=self.catalog.lease.holder(col.id),
        )
