"""Chunks in Chroma: one Chroma collection per assistant collection.

We always hand Chroma the vectors ourselves: its default embedding function
downloads a model, so it is never used. Each collection records the embedder that
filled it, and opening it with another embedder is an error, not silent nonsense.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from assistant.errors import (
    ConfigurationError,
    EmbedderMismatchError,
    StoreUnavailableError,
    UnknownCollectionError,
)
from retrievers.naming import check_collection_name
from retrievers.passage import Passage

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = ["ChunkStore", "StoredChunk", "connect_chroma"]

log = logging.getLogger(__name__)
_PAGE = 5000


def connect_chroma(url: str | None, path: Path) -> ClientAPI:
    """A Chroma server client for `url`, else an embedded store under `path` (telemetry off)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(
                "chroma_url", f"{url!r} is not an http(s) URL", "Use the form http://127.0.0.1:8000."
            )
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname,
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
            )
            client.heartbeat()
        except Exception as exc:  # chromadb raises bare Exception/ValueError on connect
            raise StoreUnavailableError(
                f"Chroma server {url}",
                f"cannot be reached ({exc})",
                "Start it (chroma run) or fix ASSISTANT_CHROMA_URL.",
            ) from exc
        return client
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def _refusing_embedding_function() -> Any:
    """Stands where Chroma would put its default embedding function, which downloads a model.

    We always pass vectors; if anything ever asks Chroma to embed text itself, this
    raises instead of reaching for the network.
    """
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class RefuseToEmbed(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            pass

        def __call__(self, input: Documents) -> Embeddings:
            raise RuntimeError(
                "Chroma was asked to embed text itself; pass embeddings computed with the assistant's embedder"
            )

        @staticmethod
        def name() -> str:
            return "assistant-refuse-to-embed"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> RefuseToEmbed:
            return RefuseToEmbed()

    return RefuseToEmbed()


class StoredChunk:
    """What the store knows about one chunk already indexed."""

    __slots__ = ("chunk_id", "file_hash", "path")

    def __init__(self, chunk_id: str, path: str, file_hash: str) -> None:
        self.chunk_id = chunk_id
        self.path = path
        self.file_hash = file_hash


class ChunkStore:
    """Reads and writes the chunks of assistant collections in one Chroma client."""

    def __init__(self, client: ClientAPI, embedder_name: str) -> None:
        self.client = client
        self.embedder_name = embedder_name

    def names(self) -> list[str]:
        return sorted(c.name for c in self.client.list_collections())

    def open(self, name: str) -> Collection:
        check_collection_name(name)
        from chromadb.errors import NotFoundError

        try:
            collection = self.client.get_collection(name, embedding_function=_refusing_embedding_function())
        except (NotFoundError, ValueError):
            raise UnknownCollectionError(name, self.names()) from None
        stored = (collection.metadata or {}).get("embedder")
        if stored and stored != self.embedder_name:
            raise EmbedderMismatchError(name, str(stored), self.embedder_name)
        return collection

    def create(self, name: str, dimension: int) -> Collection:
        check_collection_name(name)
        if name in self.names():
            return self.open(name)
        return self.client.create_collection(
            name,
            embedding_function=_refusing_embedding_function(),
            metadata={"hnsw:space": "cosine", "embedder": self.embedder_name, "dimension": dimension},
        )

    def delete(self, name: str) -> None:
        self.open(name)
        self.client.delete_collection(name)

    def count(self, collection: Collection) -> int:
        return int(collection.count())

    def stored_chunks(self, collection: Collection) -> Iterator[StoredChunk]:
        """Every chunk's id, file path and file hash, read a page at a time."""
        offset = 0
        while True:
            page = collection.get(include=["metadatas"], limit=_PAGE, offset=offset)
            ids, metadatas = page["ids"], page["metadatas"] or []
            for chunk_id, meta in zip(ids, metadatas, strict=True):
                yield StoredChunk(chunk_id, str(meta.get("path", "")), str(meta.get("file_hash", "")))
            if len(ids) < _PAGE:
                return
            offset += _PAGE

    def upsert(
        self,
        collection: Collection,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        if ids:
            collection.upsert(
                ids=list(ids),
                documents=list(texts),
                metadatas=list(metadatas),
                embeddings=[list(e) for e in embeddings],  # type: ignore[arg-type]
            )

    def update_metadata(self, collection: Collection, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        if ids:
            collection.update(ids=list(ids), metadatas=list(metadatas))

    def remove(self, collection: Collection, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), _PAGE):
            collection.delete(ids=list(ids[start : start + _PAGE]))

    def search(self, collection: Collection, vector: Sequence[float], k: int) -> list[Passage]:
        result = collection.query(
            query_embeddings=[list(vector)],  # type: ignore[arg-type]
            n_results=k,
            include=["documents", "metadatas", "distances"],
        )
        passages = []
        for chunk_id, text, meta, distance in zip(
            result["ids"][0],
            (result["documents"] or [[]])[0],
            (result["metadatas"] or [[]])[0],
            (result["distances"] or [[]])[0],
            strict=True,
        ):
            meta = dict(meta or {})
            passages.append(
                Passage(
                    chunk_id=chunk_id,
                    text=text or "",
                    source=str(meta.get("source", "")),
                    location=str(meta.get("location", "")),
                    score=1.0 - float(distance),  # cosine distance → similarity
                    metadata=meta,
                )
            )
        return passages
