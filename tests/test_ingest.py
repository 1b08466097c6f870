"""Ingestion on a real embedder and Chroma: locations, idempotency, changes and bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant import Assistant, InputFileError, Settings
from tests.conftest import HANDBOOK


@pytest.fixture
def fresh(tmp_path: Path) -> Assistant:
    return Assistant.from_settings(Settings(data_dir=tmp_path / "state"))


def stored(bot: Assistant, collection: str) -> list[dict]:
    got = bot.chunks.open(collection).get(include=["metadatas", "documents"])
    return [{**m, "text": d} for m, d in zip(got["metadatas"], got["documents"], strict=True)]


def test_chunks_keep_source_location_and_hash(fresh: Assistant) -> None:
    report = fresh.ingest(HANDBOOK, collection="docs")
    assert report.files_new == 4 and report.chunks_added == report.chunks_total > 10
    chunks = stored(fresh, "docs")
    locations = {(c["source"], c["location"]) for c in chunks}
    assert ("travel_policy.pdf", "page 1") in locations
    assert any(src == "support_handbook.html" and loc == "Refunds" for src, loc in locations)
    assert any(src == "x200_manual.md" and loc == "Error codes" for src, loc in locations)
    assert any(src == "faq.txt" and loc.startswith("line ") for src, loc in locations)
    assert all(len(c["chunk_hash"]) == 64 and len(c["file_hash"]) == 64 for c in chunks)
    tokens = fresh.embeddings.count_tokens  # type: ignore[attr-defined]
    assert max(tokens(f"{c['title']}\n{c['text']}") for c in chunks) <= 256


def test_changed_file_replaces_only_its_stale_chunks(fresh: Assistant, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(HANDBOOK, folder)
    fresh.ingest(folder, collection="docs")
    manual = folder / "x200_manual.md"
    manual.write_text(manual.read_text().replace("62 kg", "64 kg"))
    report = fresh.ingest(folder, collection="docs")
    assert (report.files_changed, report.files_unchanged) == (1, 3)
    assert report.chunks_added == report.chunks_deleted == 1
    texts = [c["text"] for c in stored(fresh, "docs")]
    assert any("64 kg" in t for t in texts) and not any("62 kg" in t for t in texts)


def test_bad_files_are_reported_and_do_not_stop_the_others(fresh: Assistant, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Pumps\n\nThe P5 pump runs at 3000 rpm.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (folder / "empty.md").write_text("")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    report = fresh.ingest(folder, collection="mixed")
    assert report.files_new == 1
    failed = {issue.path: issue.reason for issue in report.files_failed}
    assert set(failed) == {"broken.pdf", "latin1.txt", "empty.md"}
    assert "UTF-8" in failed["latin1.txt"]
    assert [issue.path for issue in report.files_skipped] == ["image.png"]
    # Nothing already stored is lost when a later run meets bad files.
    (folder / "good.md").write_text("# Pumps\n\nThe P5 pump runs at 3000 rpm.\n")
    again = fresh.ingest(folder, collection="mixed")
    assert again.files_unchanged == 1 and again.chunks_total == report.chunks_total


def test_missing_path_is_a_clear_error(fresh: Assistant, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        fresh.ingest(tmp_path / "nowhere", collection="docs")


@pytest.mark.chroma_server
def test_chroma_server_ingest_and_retrieve(chroma_server: str, tmp_path: Path) -> None:
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state", chroma_url=chroma_server))
    first = bot.ingest(HANDBOOK, collection="served")
    assert first.chunks_added == first.chunks_total > 10
    second = bot.ingest(HANDBOOK, collection="served")
    assert second.chunks_added == 0 and second.chunks_total == first.chunks_total
    passages = bot.retriever("served").search("What does error E17 mean?")
    assert passages[0].source == "x200_manual.md" and "E17" in passages[0].text
    # A second client (another process or host would do the same) sees the same index.
    other = Assistant.from_settings(Settings(data_dir=tmp_path / "other", chroma_url=chroma_server))
    assert "served" in other.collections()


def test_chroma_never_embeds_by_itself(fresh: Assistant) -> None:
    fresh.ingest(HANDBOOK / "faq.txt", collection="guarded")
    collection = fresh.chunks.open("guarded")
    # Chroma's default embedding function would download a model; ours refuses instead.
    with pytest.raises(RuntimeError, match="asked to embed text itself"):
        collection.add(ids=["x"], documents=["text without a vector"])
