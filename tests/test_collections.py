"""Collections per team: create, list, describe, delete; embedder recorded and enforced;
reindex builds beside the old index and switches only when complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import (
    Assistant,
    CollectionExistsError,
    EmbedderMismatchError,
    EmbedderSpec,
    Settings,
    UnknownCollectionError,
)
from retrievers.embedder import SentenceEmbedder, bundled_embedder_path
from tests.conftest import HANDBOOK
from tests.helpers import index_content
from tests.test_errors_and_cli import run_cli


@pytest.fixture
def fresh(tmp_path: Path) -> Assistant:
    return Assistant.from_settings(Settings(data_dir=tmp_path / "state"))


@pytest.mark.slow
def test_create_list_describe_delete(fresh: Assistant) -> None:
    created = fresh.create_collection("legal")
    assert (created.documents, created.chunks, created.embedder, created.dimension, created.normalized) == (
        0,
        0,
        "all-MiniLM-L6-v2+onnx-int8",
        384,
        True,
    )
    with pytest.raises(CollectionExistsError, match="'legal' already exists"):
        fresh.create_collection("legal")
    report = fresh.ingest(HANDBOOK, "legal")
    info = fresh.describe_collection("legal")
    assert (info.documents, info.chunks) == (4, report.chunks_total)
    assert info.bytes == sum(p.stat().st_size for p in HANDBOOK.iterdir())
    fresh.create_collection("support", EmbedderSpec(backend="torch"))
    assert fresh.collections() == ["legal", "support"]
    assert fresh.describe_collection("support").embedder == "all-MiniLM-L6-v2"
    legal_vectors = fresh.index.catalog.require("legal").chroma_name
    assert legal_vectors in {c.name for c in fresh.index.store.client.list_collections()}
    fresh.delete_collection("legal")
    assert fresh.collections() == ["support"]
    assert legal_vectors not in {c.name for c in fresh.index.store.client.list_collections()}
    with pytest.raises(UnknownCollectionError):
        fresh.describe_collection("legal")


@pytest.mark.slow
def test_querying_with_another_embedder_is_a_clear_error(fresh: Assistant, tmp_path: Path) -> None:
    fresh.ingest(HANDBOOK / "faq.txt", "faq")
    torch_embedder = SentenceEmbedder(EmbedderSpec(str(bundled_embedder_path()), "torch"))
    other = Assistant.from_settings(Settings(data_dir=tmp_path / "state"), embeddings=torch_embedder)
    with pytest.raises(
        EmbedderMismatchError, match=r"indexed with embedder 'all-MiniLM-L6-v2\+onnx-int8'.*reindex faq"
    ):
        other.retriever("faq").search("Where do visitors park?")


@pytest.mark.slow
def test_reindex_switches_only_when_complete(fresh: Assistant) -> None:
    fresh.ingest(HANDBOOK, "docs")
    before = index_content(fresh, "docs")
    old_chroma = fresh.index.catalog.require("docs").chroma_name
    during: list[str] = []

    def query_meanwhile(event: object) -> None:
        # Mid-rebuild, queries are answered from the old index by the old embedder.
        info = fresh.describe_collection("docs")
        assert info.reindexing and info.embedder == "all-MiniLM-L6-v2+onnx-int8"
        during.append(fresh.retriever("docs").search("What does error E17 mean?")[0].source)

    report = fresh.reindex("docs", EmbedderSpec(backend="torch"), on_progress=query_meanwhile)
    assert during and set(during) == {"x200_manual.md"}
    assert (report.old_embedder, report.new_embedder, report.chunks) == (
        "all-MiniLM-L6-v2+onnx-int8",
        "all-MiniLM-L6-v2",
        len(before),
    )
    info = fresh.describe_collection("docs")
    assert (info.embedder, info.reindexing, info.chunks) == ("all-MiniLM-L6-v2", False, len(before))
    assert index_content(fresh, "docs") == before  # same chunks, ids and metadata; new vectors
    assert old_chroma not in {c.name for c in fresh.index.store.client.list_collections()}
    assert fresh.retriever("docs").search("What does error E17 mean?")[0].source == "x200_manual.md"
    again = fresh.ingest(HANDBOOK, "docs")  # later syncs embed with the collection's new embedder
    assert again.files_unchanged == 4 and again.chunks_added == 0


@pytest.mark.slow
def test_cli_collections_reindex_and_ingest_report(tmp_path: Path) -> None:
    data = tmp_path / "state"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pumps.md").write_text("# Pumps\n\nThe P5 pump runs at 3000 rpm.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    assert run_cli("collections", "create", "ops", data_dir=data).returncode == 0
    ingest = run_cli("ingest", str(folder), "-c", "ops", "--json", data_dir=data)
    assert ingest.returncode == 0, ingest.stderr
    report = json.loads(ingest.stdout)
    assert report["files"]["new"] == 1 and report["files"]["failed"][0]["path"] == "broken.pdf"
    strict = run_cli("ingest", str(folder), "-c", "ops", "--strict", data_dir=data)
    assert strict.returncode == 2 and "broken.pdf: is not a readable PDF" in strict.stderr
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "bad.pdf").write_bytes(b"%PDF-1.4 junk")
    failed = run_cli("ingest", str(nothing), "-c", "other", data_dir=data)
    assert failed.returncode == 2 and "nothing in" in failed.stderr and "Traceback" not in failed.stderr
    described = json.loads(run_cli("collections", "describe", "ops", "--json", data_dir=data).stdout)
    assert (described["documents"], described["embedder"]) == (1, "all-MiniLM-L6-v2+onnx-int8")
    reindexed = run_cli("reindex", "ops", "--backend", "torch", data_dir=data)
    assert reindexed.returncode == 0 and "with all-MiniLM-L6-v2 (was all-MiniLM-L6-v2+onnx-int8)" in reindexed.stdout
    checked = run_cli("collections", "check", "ops", data_dir=data)
    assert checked.returncode == 0 and "0 missing in Chroma, 0 orphans in Chroma" in checked.stdout
    listed = run_cli("collections", data_dir=data).stdout
    assert listed.splitlines()[1].split()[:2] == ["ops", "1"], listed
    assert run_cli("collections", "delete", "ops", "--yes", data_dir=data).returncode == 0
    gone = run_cli("collections", "describe", "ops", data_dir=data)
    assert gone.returncode == 2 and "does not exist" in gone.stderr


def test_one_writer_per_collection(fresh: Assistant, tmp_path: Path) -> None:
    import socket

    from sqlalchemy import update

    from assistant import CollectionBusyError
    from retrievers.catalog_tables import collections

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nAlpha valve A1 is blue.\n")
    fresh.ingest(folder, "docs")
    (folder / "b.md").write_text("# B\n\nBeta valve B1 is red.\n")
    catalog = fresh.index.catalog

    def held_by(owner: str, seconds: float) -> None:
        import time

        with catalog.engine.begin() as conn:
            conn.execute(update(collections).values(lock_owner=owner, lock_until=time.time() + seconds))

    held_by("build-host-7:4242:abcd1234", 600)  # a live writer on another host
    with pytest.raises(CollectionBusyError, match=r"'docs' is being written by build-host-7:4242:abcd1234"):
        fresh.ingest(folder, "docs")
    held_by("build-host-7:4242:abcd1234", -1)  # its lease expired: taken over
    assert fresh.ingest(folder, "docs").files_new == 1
    (folder / "c.md").write_text("# C\n\nGamma valve C1 is green.\n")
    dead = subprocess_pid_that_exited()
    held_by(f"{socket.gethostname()}:{dead}:deadbeef", 600)  # killed on this host: taken over at once
    assert fresh.ingest(folder, "docs").files_new == 1


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
