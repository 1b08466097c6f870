"""Questions back to passages: a LangChain retriever over one collection.

`search` returns scored `Passage`s for our chains; the `BaseRetriever` interface
returns Documents (score in metadata) for anyone composing their own LangChain chain.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from retrievers.passage import Passage
from retrievers.store import ChunkStore

__all__ = ["PassageRetriever"]


class PassageRetriever(BaseRetriever):
    """Top-k passages of one collection by cosine similarity."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: ChunkStore
    embeddings: Embeddings
    collection: str
    k: int = 4

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        collection = self.store.open(self.collection)
        vector = self.embeddings.embed_query(query)
        return self.store.search(collection, vector, k or self.k)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [p.to_document() for p in self.search(query, kwargs.get("k"))]
