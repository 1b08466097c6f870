"""Embedder speed, closeness to fp32 and batch independence: old batched int8, new int8, torch fp32.

One run, same texts for every backend, every model loaded (and exported) before any timing:

  old:    the onnx-int8 backend before issue 19: every weight MatMul quantised to int8
          (dynamic activations, one scale per input tensor), texts run in length-sorted
          batches of 64 with padding. Rebuilt here in a temporary folder from the same export.
  new:    OnnxEmbedder as shipped (feed-forward down-projections fp32, one text per run,
          runs in parallel on the cores).
  torch:  SentenceEmbedder, sentence-transformers on torch, fp32: the reference.

Texts: "chunks" are realistic chunks (the project's parser and TokenSplitter at the default
settings) of N pages spread evenly over the PostgreSQL 15 manual (data/handbook without it);
"short" are the questions of benchmarks/*_questions.jsonl.

Measured:
  1. texts/s, median of R interleaved rounds, as ratios: new/old, new/torch, old/torch;
  2. cosine to torch fp32, min / 5th percentile / mean, for old (as batched) and new;
  3. batch drift: every text embedded alone, in one call (the backend's own batching) and
     in two shuffled groupings (16 and 7 texts a call): the largest |difference| between any
     two vectors of the same text and the lowest cosine between them (0 and 1.0 = none);
  4. cosine of new to old vectors (min / mean), against old's own drift between batchings.

Ratios, not absolute speeds: the machines are shared and noisy. A one-line JSON summary ends
the output. Run from the repository root (about 10 minutes on 2 busy cores):

    .venv/bin/python benchmarks/bench_embedder.py [--pages 30] [--chunks 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Before anything imports transformers or huggingface_hub: nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from assistant import Settings  # noqa: E402
from assistant.settings import DocumentSettings  # noqa: E402
from retrievers.detect import detect_kind  # noqa: E402
from retrievers.embedder import EmbedderSpec, OnnxEmbedder, SentenceEmbedder  # noqa: E402
from retrievers.loaders import parse  # noqa: E402
from retrievers.onnx_export import export_fp32  # noqa: E402
from retrievers.splitter import TokenSplitter, embedding_text  # noqa: E402

MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")
Embed = Callable[[list[str]], list[list[float]]]


class OldBatchedInt8:
    """The onnx-int8 backend as it was: all weight MatMuls int8, length-sorted padded batches."""

    def __init__(self, new: OnnxEmbedder, workdir: Path, batch_size: int = 64) -> None:
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from tokenizers import Tokenizer

        fp32, int8 = workdir / "model.onnx", workdir / "model_int8.onnx"
        export_fp32(new.model_path, new._fast_tokenizer, fp32)
        logging.disable(logging.WARNING)  # the quantiser's advice does not apply to an encoder
        try:
            quantize_dynamic(
                str(fp32),
                str(int8),
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=True,
                op_types_to_quantize=["MatMul"],
            )
        finally:
            logging.disable(logging.NOTSET)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_str(new._fast_tokenizer.to_str())
        self.tokenizer.enable_truncation(new.max_tokens)
        self.tokenizer.enable_padding()
        self.batch_size = batch_size

    def _encode(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        out: np.ndarray | None = None
        for start in range(0, len(texts), self.batch_size):
            picked = order[start : start + self.batch_size]
            vectors = self._encode([texts[i] for i in picked])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        assert out is not None
        return out.tolist()


def chunk_texts(files: list[Path], embedder: OnnxEmbedder, limit: int) -> list[str]:
    settings = Settings()
    splitter = TokenSplitter(
        embedder.count_tokens,
        chunk_tokens=settings.chunk_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
        max_tokens=embedder.max_tokens,
    )
    texts: list[str] = []
    for file in files:
        data = file.read_bytes()
        sections = parse(detect_kind(file, data), file, data, DocumentSettings())
        for chunk in splitter.split(sections, file.name):
            texts.append(embedding_text({**chunk.metadata, "source": file.name}, chunk.page_content))
            if len(texts) == limit:
                return texts
    return texts


def short_texts() -> list[str]:
    out = []
    for file in sorted((ROOT / "benchmarks").glob("*_questions.jsonl")):
        for line in file.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                out.append(json.loads(line)["question"])
    return out


def arrangements(embed: Embed, texts: list[str]) -> np.ndarray:
    """[arrangement, text, dim]: alone, one call, and two shuffled groupings."""

    def grouped(seed: int, size: int) -> np.ndarray:
        order = list(range(len(texts)))
        random.Random(seed).shuffle(order)
        out = np.empty((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), size):
            picked = order[start : start + size]
            vectors = np.array(embed([texts[i] for i in picked]), dtype=np.float32)
            if out.shape[1] == 0:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[picked] = vectors
        return out

    alone = np.array([embed([t])[0] for t in texts], dtype=np.float32)
    return np.stack([alone, np.array(embed(texts), dtype=np.float32), grouped(1, 16), grouped(2, 7)])


def drift(stack: np.ndarray) -> dict[str, float]:
    max_abs = float((stack.max(axis=0) - stack.min(axis=0)).max())
    cosines = [(stack[i] * stack[j]).sum(axis=1).min() for i in range(len(stack)) for j in range(i + 1, len(stack))]
    return {"max_abs": max_abs, "min_cos": float(min(cosines))}


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min": float(cos.min()), "p5": float(np.percentile(cos, 5)), "mean": float(cos.mean())}


def timed_rounds(backends: dict[str, Embed], texts: list[str], rounds: int) -> dict[str, float]:
    """Median texts/s per backend, rounds interleaved so that load spikes hit all of them."""
    seconds: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(rounds):
        for name, embed in backends.items():
            start = time.perf_counter()
            embed(texts)
            seconds[name].append(time.perf_counter() - start)
    return {name: len(texts) / statistics.median(s) for name, s in seconds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=30, help="manual pages to chunk, spread evenly (default 30)")
    parser.add_argument("--chunks", type=int, default=300, help="at most this many chunks (default 300)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds, interleaved (default 3)")
    parser.add_argument("--manual", type=Path, default=MANUAL, help="folder of the manual's *.html pages")
    args = parser.parse_args()

    settings = Settings()
    new = OnnxEmbedder(EmbedderSpec(backend="onnx-int8"), cache_dir=settings.embedding_cache_dir)
    torch = SentenceEmbedder(EmbedderSpec(backend="torch"))
    pages = sorted(args.manual.glob("*.html"))
    pages = pages[:: max(1, len(pages) // args.pages)][: args.pages] or sorted((ROOT / "data" / "handbook").iterdir())
    sets = {"chunks": chunk_texts(pages, new, args.chunks), "short": short_texts()}
    for name, texts in sets.items():
        tokens = [new.count_tokens(t) for t in texts]
        print(f"{name}: {len(texts)} texts, {statistics.mean(tokens):.0f} tokens on average (max {max(tokens)})")
    print(f"pages: {len(pages)} from {pages[0].parent}")

    with tempfile.TemporaryDirectory(prefix="bench-embedder-") as work:
        old = OldBatchedInt8(new, Path(work))
        backends: dict[str, Embed] = {
            "old": old.embed_documents,
            "new": new.embed_documents,
            "torch": torch.embed_documents,
        }
        for embed in backends.values():  # load and warm up before any timing
            embed(sets["short"][:8])

        summary: dict[str, Any] = {}
        print("\n1. throughput (texts/s, median of interleaved rounds)")
        for name, texts in sets.items():
            rate = timed_rounds(backends, texts, args.rounds)
            ratios = {
                "new/old": rate["new"] / rate["old"],
                "new/torch": rate["new"] / rate["torch"],
                "old/torch": rate["old"] / rate["torch"],
            }
            summary[f"throughput_{name}"] = ratios
            shown = "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
            speeds = ", ".join(f"{b} {rate[b]:.1f}" for b in backends)
            print(f"  {name:6s} {shown}   ({speeds} texts/s)")

        print("\n2. cosine to torch fp32 (min / p5 / mean)")
        print("3. batch drift between alone, one call and shuffled groupings (max |diff|, min cosine)")
        for name, texts in sets.items():
            reference = np.array(torch.embed_documents(texts), dtype=np.float32)
            stacks = {b: arrangements(backends[b], texts) for b in ("old", "new")}
            for b, stack in stacks.items():
                cos = cosine_stats(stack[1], reference)
                moved = drift(stack)
                summary[f"{b}_{name}"] = {"cos_fp32": cos, "drift": moved}
                print(
                    f"  {name:6s} {b}: cosine {cos['min']:.4f} / {cos['p5']:.4f} / {cos['mean']:.4f}"
                    f"   drift max |diff| {moved['max_abs']:.2e}, min cosine {moved['min_cos']:.5f}"
                )
            versus = cosine_stats(stacks["new"][1], stacks["old"][1])
            summary[f"new_vs_old_{name}"] = versus
            print(f"  {name:6s} new vs old (as batched): cosine min {versus['min']:.4f}, mean {versus['mean']:.4f}")

    print(json.dumps(summary, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
