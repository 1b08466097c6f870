"""Which embedder embeds which collection: each collection is queried and written by
the model it records (retrievers.catalog), loaded once per process.

New collections take the default embedder from settings; embeddings passed in from
Python must match the collection they query.
"""

from __future__ import annotations

import threading
from pathlib import Path

from langchain_core.embeddings import Embeddings

from assistant.errors import EmbedderMismatchError
from retrievers.catalog import CollectionRow
from retrievers.embedder import EmbedderInfo, EmbedderSpec, describe_embeddings, load_embedder

__all__ = ["Embedders"]


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
        self._lock = threading.Lock()  # a turn may ask while the preloading thread loads it

    def load(self, spec: EmbedderSpec) -> Embeddings:
        with self._lock:
            if spec not in self._loaded:
                self._loaded[spec] = load_embedder(spec, cache_dir=self.cache_dir, batch_size=self.batch_size)
            return self._loaded[spec]

    def default(self) -> Embeddings:
        return self.override if self.override is not None else self.load(self.default_spec)

    def chosen(self, spec: EmbedderSpec | None) -> Embeddings:
        """`spec`'s embedder, or the default one."""
        return self.load(spec) if spec else self.default()

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
