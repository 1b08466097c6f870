"""Bad input on a real ingestion: each case is reported with its reason, the run goes on,
and nothing already indexed is lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from tests.helpers import index_content
from tests.samples import write_pdf

GOOD = "# Pumps\n\nThe P5 pump runs at 3000 rpm.\n"


@pytest.fixture
def fresh(tmp_path: Path) -> Assistant:
    return Assistant.from_settings(Settings(data_dir=tmp_path / "state"))


def reasons(report: object) -> dict[str, str]:
    issues = [*report.files_failed, *report.files_skipped]  # type: ignore[attr-defined]
    return {issue.path: issue.reason for issue in issues}


def test_each_bad_file_is_reported_and_the_good_one_indexed(fresh: Assistant, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text(GOOD)
    (folder / "empty.md").write_text("")
    (folder / "blank.txt").write_text("   \n\n  ")
    write_pdf(folder / "scan.pdf", [""])
    write_pdf(folder / "locked.pdf", ["Salaries."], password="open-sesame")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (folder / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    with (folder / "huge.txt").open("wb") as big:
        big.truncate(200 * 1024 * 1024)  # 200 MB (sparse): refused by size before it is read
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "loop").symlink_to(folder)  # a folder symlink back to its parent
    (folder / "self.txt").symlink_to(folder / "self.txt")  # a file symlink to itself
    (folder / "dangling.md").symlink_to(folder / "gone.md")

    report = fresh.ingest(folder, "mixed")

    assert report.files_new == 1
    got = reasons(report)
    assert got.pop("empty.md") == "holds no text" and got.pop("blank.txt") == "holds no text"
    assert "no text layer" in got.pop("scan.pdf")
    assert "encrypted PDF that needs a password" in got.pop("locked.pdf")
    assert "not a readable PDF" in got.pop("broken.pdf")
    assert "not valid UTF-8 (byte 3)" in got.pop("latin1.txt")
    assert "is 210 MB, over the 52 MB limit" in got.pop("huge.txt")
    assert "is not a readable PNG image" in got.pop("image.png")
    assert "symbolic link loop" in got.pop("loop")
    assert "symbolic link loop" in got.pop("self.txt")
    assert "broken symbolic link" in got.pop("dangling.md")
    assert got == {}
    assert {row[1] for row in index_content(fresh, "mixed")} == {"good.md"}


def test_a_file_that_turns_bad_keeps_what_it_had(fresh: Assistant, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pumps.md").write_text(GOOD)
    write_pdf(folder / "specs.pdf", ["The K9 compressor weighs 38 kg."])
    (folder / "notes.txt").write_text("Dock opens at 06:30.\n")
    fresh.ingest(folder, "docs")
    before = index_content(fresh, "docs")
    (folder / "pumps.md").write_bytes(b"\xff\xfe broken now")
    (folder / "specs.pdf").write_bytes(b"%PDF-1.7 truncated")
    (folder / "notes.txt").write_text("Dock opens at 07:00.\n")
    report = fresh.ingest(folder, "docs")
    assert set(reasons(report)) == {"pumps.md", "specs.pdf"} and report.files_changed == 1
    after = index_content(fresh, "docs")
    kept = {row for row in before if row[1] != "notes.txt"}
    assert kept <= after and any("07:00" in row[3] for row in after)
    assert report.files_removed == 0


def test_unreadable_file_is_reported(fresh: Assistant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "open.md").write_text(GOOD)
    secret = folder / "secret.md"
    secret.write_text("# Secret\n\nNobody may read this.\n")
    secret.chmod(0)
    if os.geteuid() == 0:
        # Root reads any file whatever its mode: a FAKE read failure stands in for EACCES here.
        from retrievers.ingest import Ingestor

        real = Ingestor._read

        def denied(self: Ingestor, path: Path) -> bytes:
            if path.name == "secret.md":
                raise PermissionError(13, "Permission denied", str(path))
            return real(self, path)

        monkeypatch.setattr(Ingestor, "_read", denied)
    report = fresh.ingest(folder, "docs")
    assert report.files_new == 1
    assert reasons(report) == {"secret.md": "cannot be read (permission denied; check its permissions)"}


def test_file_changing_while_read_is_reported_and_picked_up_next_time(fresh: Assistant, tmp_path: Path) -> None:
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document

    class GrowingLogLoader(BaseLoader):
        """Reads a log that its writer is still appending to (it appends while we read)."""

        def __init__(self, path: Path) -> None:
            self.path = path

        def lazy_load(self):  # type: ignore[no-untyped-def]
            text = self.path.read_text()
            with self.path.open("a") as writer:  # the writer appends a line mid-read
                writer.write("Line appended while it was being read.\n")
            yield Document(text)

    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "plant.log2").write_text("Boiler B4 tripped at 03:10.\n")
    (folder / "fixed.md").write_text(GOOD)
    first = fresh.ingest(folder, "logs", loaders={".log2": GrowingLogLoader})
    assert first.files_new == 1
    assert reasons(first) == {"plant.log2": "changed while being ingested; run ingest again once it is saved"}
    second = fresh.ingest(folder, "logs", loaders={".log2": _StaticLoader})  # type: ignore[dict-item]
    assert second.files_new == 1 and not second.files_failed


class _StaticLoader:
    """The same file once its writer has finished: a plain read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[object]:
        from langchain_core.documents import Document

        return [Document(self.path.read_text())]
