"""SIGKILL a real ingestion at each step of the write protocol, run again, and get
exactly the index an uninterrupted run gives: same chunk ids, texts and metadata in
SQL and in Chroma, no duplicates, nothing missing, no orphans."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from assistant import Assistant, Settings
from retrievers.catalog_tables import chunks, documents
from tests.conftest import HANDBOOK, ROOT
from tests.helpers import index_content
from tests.samples import write_all_formats

# Small batches (8 chunks), so that a run writes many batches and every step repeats.
SETTINGS: dict[str, Any] = {"embedding_batch_size": 2}


def make_corpus(folder: Path) -> Path:
    shutil.copytree(HANDBOOK, folder)
    write_all_formats(folder / "formats")
    for n in range(6):
        (folder / f"notes-{n}.md").write_text(
            f"# Note {n}\n\n## Shift\n\nShift {n} starts at 0{n}:00 and checks boiler B{n}.\n\n"
            f"## Parts\n\nPart kit K{n} holds {n + 2} gaskets and {n + 3} filters.\n"
        )
    return folder


def change_corpus(folder: Path) -> None:
    """Edits, a removal, a rename and new files: every kind of sync step."""
    manual = folder / "x200_manual.md"
    manual.write_text(
        manual.read_text().replace("62 kg", "64 kg").replace("500 operating hours", "400 operating hours")
    )
    (folder / "notes-1.md").write_text("# Note 1\n\n## Shift\n\nShift 1 now starts at 02:00.\n")
    (folder / "notes-2.md").unlink()
    (folder / "faq.txt").rename(folder / "questions.txt")
    for n in range(6, 14):
        (folder / f"notes-{n}.md").write_text(
            f"# Note {n}\n\n## Valve\n\nNew note {n} about valve V{n}.\n\n## Pump\n\nPump P{n} runs at {n}00 rpm.\n"
        )


def catalog_rows(bot: Assistant) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[str]]:
    """Documents, chunks and the keyword index's chunk ids of collection "docs"."""
    col = bot.index.catalog.require("docs")
    with bot.index.catalog.engine.connect() as conn:
        docs = sorted(
            tuple(r)
            for r in conn.execute(
                select(
                    documents.c.doc_key,
                    documents.c.path,
                    documents.c.source,
                    documents.c.kind,
                    documents.c.file_hash,
                    documents.c.size,
                    documents.c.chunk_count,
                ).where(documents.c.collection_id == col.id)
            )
        )
        rows = sorted(
            (r.id, r.state, r.seq, r.text, repr(sorted(r.meta.items())))
            for r in conn.execute(select(chunks).where(chunks.c.collection_id == col.id))
        )
    return docs, rows, sorted(bot.index.keywords.ids(col.id))


def open_bot(state: Path) -> Assistant:
    return Assistant.from_settings(Settings(data_dir=state, **SETTINGS))


def killed_run(state: Path, folder: str, point: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.crash_child", str(state), folder, point],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == -signal.SIGKILL, f"{point} was not reached: {result.returncode} {result.stderr[-1500:]}"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The corpus at version 1 indexed (state saved), then the uninterrupted reference for version 2."""
    base = tmp_path_factory.mktemp("crash")
    folder = make_corpus(base / "corpus")
    reference = open_bot(base / "reference")
    first = reference.ingest(folder, "docs")
    assert first.files_new > 15 and first.chunks_added > 40
    v1 = (catalog_rows(reference), index_content(reference, "docs"))
    shutil.copytree(base / "reference", base / "at-v1")
    change_corpus(folder)
    second = reference.ingest(folder, "docs")
    assert (second.files_changed, second.files_removed, second.files_moved, second.files_new) == (2, 1, 1, 8)
    v2 = (catalog_rows(reference), index_content(reference, "docs"))
    return {"base": base, "folder": folder, "v1": v1, "v2": v2}


POINTS = [
    "Ledger.stage#1:after",  # pending rows recorded, nothing in Chroma yet
    "ChunkStore.upsert#1:after",  # vectors in Chroma, still pending in SQL
    "Ledger.commit#1:after",  # new version live, stale chunks marked deleting, still in Chroma
    "Ledger.purge#1",  # stale chunks gone from Chroma, their rows still there
    "Ledger.remove_document#1",  # a removed file's vectors deleted, its rows not yet
    "Ledger.move#1",  # a renamed file's metadata updated in Chroma, not yet in SQL
    "OnnxEmbedder.embed_documents#2",  # in the middle of embedding
    "Ledger.stage#3",  # between batches, after some were complete
]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.slow
def test_killed_sync_then_rerun_equals_uninterrupted(scenario: dict[str, Any], point: str) -> None:
    state = scenario["base"] / f"killed-{POINTS.index(point)}"
    shutil.copytree(scenario["base"] / "at-v1", state)
    killed_run(state, str(scenario["folder"]), point)
    bot = open_bot(state)
    bot.ingest(scenario["folder"], "docs")
    assert (catalog_rows(bot), index_content(bot, "docs")) == scenario["v2"]


@pytest.mark.slow
def test_killed_first_ingest_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    folder = make_corpus(tmp_path / "corpus")
    reference = open_bot(tmp_path / "reference")
    reference.ingest(folder, "docs")
    killed_run(tmp_path / "killed", str(folder), "ChunkStore.upsert#3:after")
    bot = open_bot(tmp_path / "killed")
    report = bot.ingest(folder, "docs")
    assert report.recovered > 0 and report.files_unchanged > 0
    assert (catalog_rows(bot), index_content(bot, "docs")) == (
        catalog_rows(reference),
        index_content(reference, "docs"),
    )


@pytest.mark.slow
def test_killed_reindex_keeps_serving_the_old_index(scenario: dict[str, Any]) -> None:
    state = scenario["base"] / "reindex-killed"
    shutil.copytree(scenario["base"] / "at-v1", state)
    killed_run(state, "reindex:docs", "ChunkStore.upsert#3:after")
    bot = open_bot(state)
    assert bot.describe_collection("docs").reindexing
    assert bot.describe_collection("docs").embedder == "all-MiniLM-L6-v2+onnx-int8"
    assert bot.retriever("docs").search("What does error E17 mean?")[0].source == "x200_manual.md"
    assert (catalog_rows(bot), index_content(bot, "docs")) == scenario["v1"]
