"""Questions back to passages: a LangChain retriever over one collection.

`search` returns scored `Passage`s for our chains; the `BaseRetriever` interface
returns Documents (score in metadata) for anyone composing their own LangChain chain.
It wraps retrievers.search, which never imports it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrievers.hybrid import Retrieval
from retrievers.passage import Passage
from retrievers.search import HybridSearch

__all__ = ["PassageRetriever"]


class PassageRetriever(BaseRetriever):
    """Top-k passages of one collection: hybrid (meaning + keywords) search, see retrievers.hybrid."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: HybridSearch
    collection: str
    k: int = 4
    local_only: bool = False  # the collection's questions never go to a large model

    @property
    def embeddings(self) -> Embeddings:
        """The embedder this collection was built with (the one its queries use)."""
        return self.searcher.embeddings_for(self.collection)

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        return self.retrieve(query, k).passages

    def retrieve(self, query: str, k: int | None = None) -> Retrieval:
        """Passages and the evidence behind them (lists, terms) that the router reads."""
        return self.searcher.retrieve(self.collection, query, k or self.k)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [p.to_document() for p in self.search(query, kwargs.get("k"))]
