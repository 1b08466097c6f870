"""Vectors in Chroma, embedded or server.

We always hand Chroma the vectors ourselves: its default embedding function
downloads a model, so it is never used, and a refusing one stands in its place.
The embedded store (PersistentClient) is for one writing process; several
processes or hosts share a Chroma server (`chroma run`) through `chroma_url`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from assistant.errors import ConfigurationError, StoreUnavailableError
from retrievers.passage import Passage

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = ["ChunkStore", "connect_chroma", "scalar_meta"]

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
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except Exception as exc:  # chromadb's Rust core raises its own, unexported, error types here
        raise StoreUnavailableError(
            f"Chroma store {path}",
            f"cannot be opened ({type(exc).__name__}: {exc})",
            "Make ASSISTANT_DATA_DIR a writable folder, or use a Chroma server (ASSISTANT_CHROMA_URL).",
        ) from exc


def scalar_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The values Chroma accepts in metadata: only str, int, float and bool."""
    return {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool)}


@cache
def _refusing_embedding_function() -> Any:
    """Stands where Chroma would put its default embedding function, which downloads a model.

    We always pass vectors; if anything ever asks Chroma to embed text itself, this
    raises instead of reaching for the network. It is registered with Chroma under its
    name, so that Chroma can rebuild it from a collection's stored configuration.
    """
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
    from chromadb.utils.embedding_functions import register_embedding_function

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

    register_embedding_function(RefuseToEmbed)
    return RefuseToEmbed()


class ChunkStore:
    """Vectors of assistant collections in one Chroma client, by Chroma collection name.

    Which Chroma collection serves an assistant collection, and with which embedder,
    is the catalog's business (see retrievers.catalog); this class only moves vectors.
    Chroma's own failures (a server gone, a broken store) come out as StoreUnavailableError.

    `ChunkStore.connecting(connect, where)` connects on first use instead (importing
    Chroma alone takes a second): commands that never touch vectors never pay it, and a
    turn can connect while its models load.
    """

    def __init__(self, client: ClientAPI, where: str) -> None:
        self._client: ClientAPI | None = client
        self._connect: Callable[[], ClientAPI] | None = None
        self._lock = threading.Lock()
        self.where = where  # "Chroma server http://..." or "Chroma store /path", for messages

    @classmethod
    def connecting(cls, connect: Callable[[], ClientAPI], where: str) -> ChunkStore:
        """A store whose client `connect()` makes on first use (once, whichever thread asks first)."""
        store = cls.__new__(cls)
        store._client, store._connect, store._lock, store.where = None, connect, threading.Lock(), where
        return store

    @property
    def client(self) -> ClientAPI:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    assert self._connect is not None
                    self._client = self._connect()
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        """Close the client, if one was made (closing never connects)."""
        if self._client is not None:
            self._client.close()  # type: ignore[attr-defined]  # on every chromadb Client, not ClientAPI

    @contextmanager
    def _guard(self) -> Iterator[None]:
        import httpx
        from chromadb.errors import ChromaError

        try:
            yield
        except (ChromaError, httpx.HTTPError, ConnectionError, OSError) as exc:
            raise StoreUnavailableError(
                self.where, f"failed ({type(exc).__name__}: {exc})", "Check that Chroma is running and writable."
            ) from exc

    def get(self, chroma_name: str) -> Collection:
        with self._guard():
            return self.client.get_collection(chroma_name, embedding_function=_refusing_embedding_function())

    def create(self, chroma_name: str, embedder: str, dimension: int) -> Collection:
        with self._guard():
            return self.client.get_or_create_collection(
                chroma_name,
                embedding_function=_refusing_embedding_function(),
                metadata={"hnsw:space": "cosine", "embedder": embedder, "dimension": dimension},
            )

    def drop(self, chroma_name: str) -> None:
        """Delete a Chroma collection; nothing happens if it does not exist."""
        from chromadb.errors import NotFoundError

        with self._guard(), suppress(NotFoundError, ValueError):
            self.client.delete_collection(chroma_name)

    def count(self, collection: Collection) -> int:
        with self._guard():
            return int(collection.count())

    def ids(self, collection: Collection) -> set[str]:
        """Every id in the collection, read a page at a time."""
        found: set[str] = set()
        offset = 0
        with self._guard():
            while True:
                page = collection.get(include=[], limit=_PAGE, offset=offset)
                found.update(page["ids"])
                if len(page["ids"]) < _PAGE:
                    return found
                offset += _PAGE

    def upsert(
        self,
        collection: Collection,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        if not ids:
            return
        with self._guard():
            # One document can hold more chunks than Chroma takes in a call (a generated index
            # page of 20,000 entries): write them in pages.
            step = min(_PAGE, self.client.get_max_batch_size())
            for start in range(0, len(ids), step):
                end = start + step
                collection.upsert(
                    ids=list(ids[start:end]),
                    documents=list(texts[start:end]),
                    metadatas=list(metadatas[start:end]),
                    embeddings=[list(e) for e in embeddings[start:end]],  # type: ignore[arg-type]
                )

    def update_metadata(self, collection: Collection, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        with self._guard():
            for start in range(0, len(ids), _PAGE):
                collection.update(
                    ids=list(ids[start : start + _PAGE]), metadatas=list(metadatas[start : start + _PAGE])
                )

    def remove(self, collection: Collection, ids: Sequence[str]) -> None:
        with self._guard():
            for start in range(0, len(ids), _PAGE):
                collection.delete(ids=list(ids[start : start + _PAGE]))

    def search(self, collection: Collection, vector: Sequence[float], k: int) -> list[Passage]:
        with self._guard():
            result = collection.query(
                query_embeddings=[list(vector)],  # type: ignore[arg-type]
                n_results=k,
                include=["documents", "metadatas", "distances"],
            )
        return [
            _passage(chunk_id, text, meta, 1.0 - float(distance))  # cosine distance → similarity
            for chunk_id, text, meta, distance in zip(
                result["ids"][0],
                (result["documents"] or [[]])[0],
                (result["metadatas"] or [[]])[0],
                (result["distances"] or [[]])[0],
                strict=True,
            )
        ]

    def texts(self, collection: Collection, ids: Sequence[str]) -> dict[str, str]:
        """The text of each chunk id found."""
        found: dict[str, str] = {}
        with self._guard():
            for start in range(0, len(ids), _PAGE):
                page = collection.get(ids=list(ids[start : start + _PAGE]), include=["documents"])
                found.update(zip(page["ids"], page["documents"] or [], strict=True))
        return found

    def fetch(self, collection: Collection, ids: Sequence[str], vector: Sequence[float]) -> list[Passage]:
        """The chunks with these ids, scored by cosine similarity to `vector` (in no particular order)."""
        if not ids:
            return []
        with self._guard():
            result = collection.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        found = []
        for chunk_id, text, meta, embedding in zip(
            result["ids"],
            result["documents"] or [],
            result["metadatas"] or [],
            result["embeddings"],  # type: ignore[arg-type]
            strict=True,
        ):
            other = [float(x) for x in embedding]
            scale = norm * (math.sqrt(sum(x * x for x in other)) or 1.0)
            found.append(_passage(chunk_id, text, meta, sum(a * b for a, b in zip(vector, other, strict=True)) / scale))
        return found


def _passage(chunk_id: str, text: str | None, meta: Any, score: float) -> Passage:
    meta = dict(meta or {})
    return Passage(
        chunk_id=chunk_id,
        text=text or "",
        source=str(meta.get("source", "")),
        location=str(meta.get("location", "")),
        score=score,
        metadata=meta,
    )
