"""Ingestion on the real embedder, Chroma and SQLite: sync, moves, removals, reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant import Assistant, InputFileError, Settings
from tests.conftest import HANDBOOK
from tests.helpers import chroma_rows, index_content, sql_rows
from tests.samples import write_all_formats


@pytest.fixture
def fresh(tmp_path: Path) -> Assistant:
    return Assistant.from_settings(Settings(data_dir=tmp_path / "state"))


def no_embedding(bot: Assistant, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tripwire: any embedding from here on fails the test."""

    def refuse(texts: list[str]) -> list[list[float]]:
        raise AssertionError(f"embedded {len(texts)} texts: {texts[:2]}")

    monkeypatch.setattr(bot.index.embeddings_for(name), "embed_documents", refuse)


def test_every_format_is_indexed_and_cited(fresh: Assistant, tmp_path: Path) -> None:
    folder = write_all_formats(tmp_path / "docs")
    report = fresh.ingest(folder, "formats", loaders=None)
    assert report.files_new == 8 and [i.path for i in report.files_failed] == ["tickets.jsonl"]
    cited = {(source, location) for source, location, _ in chroma_rows(fresh, "formats").values()}
    assert {
        ("notes.txt", "line 1"),
        ("guide.md", "Safety › Gas leaks"),
        ("policy.rst", "Holiday"),
        ("page.html", "Hotline"),
        ("specs.pdf", "page 2"),
        ("pump.docx", "Installation › Torque"),
        ("parts.csv", "row 2"),
        ("faq.json", "Wifi"),
    } <= cited
    top = fresh.retriever("formats").search("How much does the K9 compressor weigh?")[0]
    assert (top.citation, top.text) == ("specs.pdf › page 1", "The K9 compressor weighs 38 kg.")
    row = fresh.retriever("formats").search("price of filter F7")[0]
    assert row.citation == "parts.csv › row 2" and "9.90 EUR" in row.text


@pytest.mark.slow
def test_chunks_fit_the_embedder(fresh: Assistant, tmp_path: Path) -> None:
    folder = tmp_path / "long"
    folder.mkdir()
    heading = "A heading that goes on " * 40
    (folder / "long.md").write_text(f"# {heading}\n\n" + "Pressure readings are logged hourly. " * 400)
    fresh.ingest(folder, "long")
    embedder = fresh.index.embeddings_for("long")
    rows = fresh.index.ledger.iter_live_chunks(fresh.index.catalog.require("long").id)
    sizes = [embedder.count_tokens(f"{c.meta['title']}\n{c.text}") for page in rows for c in page]  # type: ignore[attr-defined]
    assert len(sizes) > 10 and max(sizes) <= embedder.max_tokens == 256  # type: ignore[attr-defined]


def test_unchanged_folder_embeds_and_writes_nothing(
    fresh: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = shutil.copytree(HANDBOOK, tmp_path / "docs")
    first = fresh.ingest(folder, "docs")
    before = (sql_rows(fresh, "docs"), index_content(fresh, "docs"))
    no_embedding(fresh, "docs", monkeypatch)
    again = fresh.ingest(folder, "docs")
    assert (again.files_unchanged, again.chunks_added, again.chunks_deleted) == (4, 0, 0)
    assert again.chunks_total == first.chunks_total
    assert (sql_rows(fresh, "docs"), index_content(fresh, "docs")) == before


def test_changed_file_replaces_exactly_its_own_chunks(fresh: Assistant, tmp_path: Path) -> None:
    folder = shutil.copytree(HANDBOOK, tmp_path / "docs")
    fresh.ingest(folder, "docs")
    before = index_content(fresh, "docs")
    manual = folder / "x200_manual.md"
    manual.write_text(manual.read_text().replace("62 kg", "64 kg"))
    report = fresh.ingest(folder, "docs")
    assert (report.files_changed, report.files_unchanged) == (1, 3)
    assert report.chunks_added == report.chunks_deleted == 1
    after = index_content(fresh, "docs")
    gone, came = before - after, after - before
    assert [row[3] for row in gone if "62 kg" in row[3]] and len(gone) == len(came) == 1
    assert all(row[1] == "x200_manual.md" for row in gone | came)


def test_removed_file_loses_its_chunks(fresh: Assistant, tmp_path: Path) -> None:
    folder = shutil.copytree(HANDBOOK, tmp_path / "docs")
    fresh.ingest(folder, "docs")
    (folder / "faq.txt").unlink()
    report = fresh.ingest(folder, "docs")
    assert (report.files_removed, report.files_unchanged) == (1, 3) and report.chunks_deleted > 0
    assert "faq.txt" not in {source for _, source, _, _ in index_content(fresh, "docs")}
    assert fresh.describe_collection("docs").documents == 3


@pytest.mark.slow
def test_renamed_and_moved_files_are_not_embedded_again(
    fresh: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = shutil.copytree(HANDBOOK, tmp_path / "docs")
    fresh.ingest(folder, "docs")
    ids_before = {row[0] for row in index_content(fresh, "docs")}
    (folder / "archive").mkdir()
    (folder / "faq.txt").rename(folder / "archive" / "questions.txt")
    no_embedding(fresh, "docs", monkeypatch)
    report = fresh.ingest(folder, "docs")
    assert (report.files_moved, report.files_new, report.files_removed, report.chunks_added) == (1, 0, 0, 0)
    content = index_content(fresh, "docs")
    assert {row[0] for row in content} == ids_before
    assert "archive/questions.txt" in {row[1] for row in content} and "faq.txt" not in {row[1] for row in content}
    monkeypatch.undo()  # queries embed their question
    hit = fresh.retriever("docs").search("Where do visitors park?")[0]
    assert hit.source == "archive/questions.txt"
    # The whole folder moved elsewhere: still nothing to embed.
    no_embedding(fresh, "docs", monkeypatch)
    moved = folder.rename(tmp_path / "renamed-docs")
    report = fresh.ingest(moved, "docs")
    assert (report.files_moved, report.chunks_added) == (4, 0)
    assert {row[0] for row in index_content(fresh, "docs")} == ids_before


@pytest.mark.slow
def test_ingesting_one_file_leaves_the_rest_of_the_collection(fresh: Assistant, tmp_path: Path) -> None:
    folder = shutil.copytree(HANDBOOK, tmp_path / "docs")
    fresh.ingest(folder, "docs")
    other = tmp_path / "extra.md"
    other.write_text("# Extra\n\nThe annex holds spare filters.\n")
    report = fresh.ingest(other, "docs")
    assert (report.files_new, report.files_removed) == (1, 0)
    assert fresh.describe_collection("docs").documents == 5


def test_custom_langchain_loader_for_other_formats(fresh: Assistant, tmp_path: Path) -> None:
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document

    class LogLoader(BaseLoader):
        """A team's own format: one record per 'ENTRY:' line."""

        def __init__(self, path: Path) -> None:
            self.path = path

        def lazy_load(self):  # type: ignore[no-untyped-def]
            for number, line in enumerate(self.path.read_text().splitlines(), start=1):
                if line.startswith("ENTRY:"):
                    yield Document(line.removeprefix("ENTRY:").strip(), metadata={"location": f"entry {number}"})

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "shift.xlog").write_text("ENTRY: Boiler B4 tripped at 03:10.\nnoise\nENTRY: Reset by Kim.\n")
    report = fresh.ingest(folder, "logs", loaders={".xlog": LogLoader})
    assert report.files_new == 1 and report.files_skipped == []
    assert {(s, loc) for s, loc, _ in chroma_rows(fresh, "logs").values()} == {
        ("shift.xlog", "entry 1"),
        ("shift.xlog", "entry 3"),
    }


def test_progress_events_and_report(fresh: Assistant, tmp_path: Path) -> None:
    folder = write_all_formats(tmp_path / "docs")
    events = []
    report = fresh.ingest(folder, "docs", on_progress=events.append)
    done = [e.files_done for e in events]
    assert done == sorted(done) and done[-1] == 9
    assert events[0].phase == "scanning" and {e.files_total for e in events[1:]} == {9}  # known once scanned
    assert {e.path for e in events if e.phase == "reading"} == {f.name for f in folder.iterdir()}
    assert events[-1].chunks_added == report.chunks_added > 0 and events[-1].chunks_per_second > 0
    assert report.to_dict()["files"]["failed"] == [{"path": "tickets.jsonl", "reason": report.files_failed[0].reason}]


def test_missing_path_is_a_clear_error(fresh: Assistant, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        fresh.ingest(tmp_path / "nowhere", collection="docs")


@pytest.mark.chroma_server
def test_chroma_server_ingest_and_retrieve(chroma_server: str, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    bot = Assistant.from_settings(
        Settings(data_dir=tmp_path / "state", chroma_url=chroma_server, database_url=database)
    )
    first = bot.ingest(HANDBOOK, collection="served")
    assert first.chunks_added == first.chunks_total > 10
    second = bot.ingest(HANDBOOK, collection="served")
    assert second.chunks_added == 0 and second.chunks_total == first.chunks_total
    passages = bot.retriever("served").search("What does error E17 mean?")
    assert passages[0].source == "x200_manual.md" and "E17" in passages[0].text
    # A second process (or host) with the same database and Chroma server sees the same index.
    other = Assistant.from_settings(
        Settings(data_dir=tmp_path / "other", chroma_url=chroma_server, database_url=database)
    )
    assert "served" in other.collections() and other.index.check("served").consistent
    assert other.retriever("served").search("What does error E17 mean?")[0].chunk_id == passages[0].chunk_id


def test_chroma_never_embeds_by_itself(fresh: Assistant) -> None:
    fresh.ingest(HANDBOOK / "faq.txt", collection="guarded")
    collection = fresh.index.store.get(fresh.index.catalog.require("guarded").chroma_name)
    # Chroma's default embedding function would download a model; ours refuses instead.
    with pytest.raises(RuntimeError, match="asked to embed text itself"):
        collection.add(ids=["x"], documents=["text without a vector"])
