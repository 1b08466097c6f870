"""One hybrid search over one collection: candidates by meaning (Chroma) and by keywords
(the SQL keyword index), fused, optionally re-ranked, made into readable passages.

How candidates are scored and passages grown is retrievers.hybrid; the settings are
assistant.settings.RetrievalSettings. PassageRetriever (retrievers.retriever) wraps this
for LangChain; this module never imports it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from langchain_core.embeddings import Embeddings

from assistant.capabilities import token_counter
from assistant.settings import RetrievalSettings
from retrievers.catalog import Catalog, CollectionRow
from retrievers.embedders import Embedders
from retrievers.hybrid import Retrieval, expand, fuse, max_fused, near_duplicate, supported
from retrievers.keyword_index import KeywordIndex
from retrievers.keywords import is_identifier, query_terms, terms_of
from retrievers.ledger import Ledger
from retrievers.naming import check_collection_name
from retrievers.passage import Passage
from retrievers.rerank import Reranker
from retrievers.store import ChunkStore

__all__ = ["HybridSearch"]

log = logging.getLogger(__name__)


class HybridSearch:
    """Searches any collection of the catalog; `settings` unless a search passes its own."""

    def __init__(
        self,
        catalog: Catalog,
        ledger: Ledger,
        keywords: KeywordIndex,
        store: ChunkStore,
        embedders: Embedders,
        settings: RetrievalSettings,
        *,
        keyword_language: str = "english",
        reranker: Reranker | None = None,
    ) -> None:
        self.catalog = catalog
        self.ledger = ledger
        self.keywords = keywords
        self.store = store
        self.embedders = embedders
        self.settings = settings
        self.keyword_language = keyword_language  # for collections whose keyword index is not built
        self.reranker = reranker
        self._warned: set[str] = set()

    def embeddings_for(self, name: str) -> Embeddings:
        """The embedder the collection was built with (the one its queries use)."""
        return self.embedders.for_collection(self.catalog.require(check_collection_name(name)))

    def retrieve(self, name: str, query: str, k: int, options: RetrievalSettings | None = None) -> Retrieval:
        """The `k` best passages for `query` and the evidence behind them (see retrievers.hybrid)."""
        opts = options or self.settings
        mode = opts.retrieval_mode
        col = self.catalog.require(check_collection_name(name))
        embeddings = self.embedders.for_collection(col)
        scheme = col.keywords if col.keywords and col.keywords.current else None
        language = scheme.language if scheme else self.keyword_language
        terms = query_terms(query, language)
        vector = embeddings.embed_query(query)
        chroma = self.store.get(col.chroma_name)
        wanted = max(opts.retrieval_candidates, k)
        dense = self.store.search(chroma, vector, wanted) if mode != "keyword" else []
        keyword: list[str] = []
        exact: list[str] = []
        unknown: list[str] = []
        identifiers = [t for t in terms if is_identifier(t)]
        if mode != "dense":
            if scheme is None:
                self._warn_unbuilt(name)
            else:
                keyword = [i for i, _ in self.keywords.search(col.id, terms, wanted)]
                if identifiers:
                    exact = [i for i, _ in self.keywords.search(col.id, identifiers, wanted, every=True)]
                    unknown = self._unknown(col.id, identifiers, language) if not exact else []
        dense_ids = [p.chunk_id for p in dense]
        searched = scheme is not None and mode != "dense"
        weights = (
            opts.dense_weight if mode == "hybrid" else float(mode == "dense"),
            (opts.keyword_weight if mode == "hybrid" else 1.0) if searched else 0.0,
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
        unknown = self.keywords.unknown_terms(collection_id, identifiers)
        # A part's first term is the part as written (stemmed when it is a plain word).
        dotted = {
            t: [(terms_of(p, language) or [p])[0] for p in re.split(r"[.:]", t) if p] for t in unknown if "." in t
        }
        if not dotted:
            return unknown
        missing = set(
            self.keywords.unknown_terms(collection_id, sorted({p for parts in dotted.values() for p in parts}))
        )
        return [t for t in unknown if t not in dotted or any(p in missing for p in dotted[t])]

    def _readable(
        self, col: CollectionRow, ranked: list[Passage], k: int, embeddings: Embeddings, opts: RetrievalSettings
    ) -> list[Passage]:
        """The best `k` of `ranked`, grown by their neighbours, without near-duplicates."""
        count = token_counter(embeddings)
        reach = opts.neighbour_chunks
        around = self.ledger.around(col.id, [p.chunk_id for p in ranked[: 2 * k]], reach, reach) if reach > 0 else {}
        kept: list[Passage] = []
        held: set[str] = set()
        for passage in ranked:
            if len(kept) == k:
                break
            if passage.chunk_id in held:
                continue
            free = [c for c in around.get(passage.chunk_id, []) if c.id not in held]  # no text twice
            grown, ids = (
                expand(passage, free, count, opts.passage_max_tokens)
                if passage.chunk_id in around
                else (passage, {passage.chunk_id})
            )
            if near_duplicate(grown, kept, opts.dedupe_overlap):
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
