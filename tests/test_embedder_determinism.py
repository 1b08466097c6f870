"""A text's vector depends on the text only (issue 19, finding 9), on the real bundled embedder.

The int8 backend used to quantise a whole batch with one activation scale, so the same text
came out differently beside different texts (cosine 0.981 to 0.992) and an incremental ingest
differed from a fresh one. Now: the same vector bit for bit whatever the batch, still within
cosine 0.99 of the fp32 torch backend, and incremental ingests equal fresh ones chunk for chunk.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant, Settings
from retrievers.embedder import EmbedderSpec, OnnxEmbedder
from retrievers.splitter import embedding_text
from tests.conftest import HANDBOOK, ROOT


@pytest.fixture(scope="module")
def int8(bot: Assistant) -> OnnxEmbedder:
    embedder = bot.index.embedders.load(EmbedderSpec(backend="onnx-int8"))
    assert isinstance(embedder, OnnxEmbedder)
    return embedder


@pytest.fixture(scope="module")
def passages(bot: Assistant) -> list[str]:
    """Realistic texts of every length: the handbook's chunks as embedded, the sample
    questions and their reference answers."""
    col = bot.index.catalog.require("handbook")
    chunks = [embedding_text(c.meta, c.text) for page in bot.index.ledger.iter_live_chunks(col.id) for c in page]
    rows = [json.loads(line) for line in (ROOT / "data" / "handbook_qa.jsonl").read_text().splitlines() if line]
    texts = chunks + [r["question"] for r in rows] + [r["reference"] for r in rows if r.get("reference")]
    assert len(chunks) > 10 and len(texts) > 50
    return texts


@pytest.mark.slow
def test_same_text_same_vector_whatever_its_batch(int8: OnnxEmbedder, passages: list[str]) -> None:
    by_length = sorted(passages, key=len)
    short, long = by_length[:12], by_length[-12:]
    for text in [by_length[0], by_length[len(by_length) // 2], by_length[-1]]:
        alone = int8.embed_documents([text])[0]
        variants = {
            "query": int8.embed_query(text),
            "amid short texts": int8.embed_documents([*short[:6], text, *short[6:]])[6],
            "amid long texts": int8.embed_documents([*long[:6], text, *long[6:]])[6],
            "first of many": int8.embed_documents([text, *long, *short])[0],
            "last of many": int8.embed_documents([*short, *long, text])[-1],
            "twice in one call": int8.embed_documents([text, *short, text])[-1],
        }
        for where, vector in variants.items():
            assert vector == alone, f"{where}: {text[:40]!r} differs"

    # Whole sets in different orders and groupings: identical, text by text.
    together = np.array(int8.embed_documents(passages))
    order = np.random.default_rng(19).permutation(len(passages))
    shuffled = np.empty_like(together)
    shuffled[order] = int8.embed_documents([passages[i] for i in order])
    in_sevens = np.concatenate([int8.embed_documents(passages[i : i + 7]) for i in range(0, len(passages), 7)])
    assert np.array_equal(together, shuffled) and np.array_equal(together, in_sevens)


@pytest.mark.slow
def test_int8_stays_within_cosine_099_of_fp32(bot: Assistant, int8: OnnxEmbedder, passages: list[str]) -> None:
    fp32 = np.array(bot.index.embedders.load(EmbedderSpec(backend="torch")).embed_documents(passages))
    cosine = (np.array(int8.embed_documents(passages)) * fp32).sum(axis=1)  # both normalised
    assert cosine.min() >= 0.99, f"min {cosine.min():.4f}, mean {cosine.mean():.4f} over {len(passages)}"


def chroma_vectors(bot: Assistant, name: str) -> dict[str, np.ndarray]:
    col = bot.index.catalog.require(name)
    got = bot.index.store.get(col.chroma_name).get(include=["embeddings"])
    return {i: np.asarray(v) for i, v in zip(got["ids"], got["embeddings"], strict=True)}


@pytest.mark.slow
def test_incremental_ingest_equals_a_fresh_one(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ["faq.txt", "support_handbook.html", "travel_policy.pdf"]:
        shutil.copy(HANDBOOK / name, folder / name)
    incremental = Assistant.from_settings(Settings(data_dir=tmp_path / "incremental"))
    first = incremental.ingest(folder, "docs")
    # A file added and one changed: their chunks are embedded apart from the first ones.
    shutil.copy(HANDBOOK / "x200_manual.md", folder / "x200_manual.md")
    faq = folder / "faq.txt"
    faq.write_text(faq.read_text() + "\nQ: Where are spare filters kept?\nA: In the annex, shelf 3.\n")
    second = incremental.ingest(folder, "docs")
    assert (second.files_new, second.files_changed, second.files_unchanged) == (1, 1, 2)
    assert 0 < second.chunks_added < second.chunks_total and first.chunks_added > 0

    fresh = Assistant.from_settings(Settings(data_dir=tmp_path / "fresh"))
    once = fresh.ingest(folder, "docs")
    assert once.chunks_added == once.chunks_total == second.chunks_total

    got, want = chroma_vectors(incremental, "docs"), chroma_vectors(fresh, "docs")
    assert sorted(got) == sorted(want)
    differing = [i for i in want if not np.array_equal(got[i], want[i])]
    assert differing == [], f"{len(differing)} of {len(want)} chunks have other vectors"
