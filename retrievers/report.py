"""What an ingestion run reports: per-file outcomes, chunk counts and progress events.

A run moves through phases, sent with every progress event: SCANNING the folder
(hashing what changed), then per file READING (parsed and split; a slow parser, such as
OCR page by page, sends READING events with its `activity`), and per batch of
chunks LOADING_EMBEDDER (the run's first embedding call, which loads the model if this
process has not yet), EMBEDDING (after every `embedding_batch_size` chunks) and WRITING.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "EMBEDDING",
    "LOADING_EMBEDDER",
    "PHASES",
    "READING",
    "SCANNING",
    "WRITING",
    "FileIssue",
    "IngestProgress",
    "IngestReport",
]

SCANNING = "scanning"
LOADING_EMBEDDER = "loading embedder"
READING = "reading"
EMBEDDING = "embedding"
WRITING = "writing"
PHASES = (SCANNING, LOADING_EMBEDDER, READING, EMBEDDING, WRITING)


@dataclass(frozen=True)
class FileIssue:
    path: str  # as cited: relative to the folder ingested
    reason: str  # what was seen, and what to do


@dataclass
class IngestReport:
    collection: str
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_moved: int = 0
    files_removed: int = 0
    files_skipped: list[FileIssue] = field(default_factory=list)  # not a document type we read
    files_failed: list[FileIssue] = field(default_factory=list)  # a document, but it could not be indexed
    files_partial: list[FileIssue] = field(default_factory=list)  # indexed, but parts of it were left out
    chunks_added: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    recovered: int = 0  # chunks of an interrupted earlier run, cleaned up or kept to resume
    chunks_resumed: int = 0  # chunks an interrupted earlier run had written, not embedded again
    kinds: dict[str, int] = field(default_factory=dict)  # files indexed in this run (new, changed) by kind
    ocr_pages: int = 0  # pages of those files read with OCR (scanned PDF pages, images)
    ocr_seconds: float = 0.0  # the time OCR took on them

    def count_kind(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    @property
    def ocr_seconds_per_page(self) -> float:
        return self.ocr_seconds / self.ocr_pages if self.ocr_pages else 0.0

    def _ocr_text(self) -> str:
        if not self.ocr_pages:
            return ""
        pages = "1 page" if self.ocr_pages == 1 else f"{self.ocr_pages} pages"
        return f"OCR {pages}, {self.ocr_seconds_per_page:.1f} s/page; "

    @property
    def files_added(self) -> int:
        return self.files_new + self.files_changed

    @property
    def files_indexed(self) -> int:
        """Files whose current content is in the index after this run."""
        return self.files_new + self.files_changed + self.files_unchanged + self.files_moved

    def summary(self) -> str:
        return (
            f"{self.collection}: files {self.files_new} new, {self.files_changed} changed, "
            f"{self.files_unchanged} unchanged, {self.files_moved} moved, {self.files_removed} removed, "
            f"{len(self.files_failed)} failed, {len(self.files_skipped)} skipped"
            f"{f', {len(self.files_partial)} partly indexed' if self.files_partial else ''}"
            f"{f' ({self._kinds_text()})' if self.kinds else ''}; "
            f"{self._ocr_text()}"
            f"chunks {self.chunks_added} added, "
            f"{self.chunks_deleted} deleted, {self.chunks_total} in the collection; {self.seconds:.1f}s"
        )

    def _kinds_text(self) -> str:
        """ "2 pdf, 1 xlsx, 1 image": the most frequent kind first."""
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.kinds.items(), key=lambda item: (-item[1], item[0])))

    def to_dict(self) -> dict[str, object]:
        return {
            "collection": self.collection,
            "files": {
                "new": self.files_new,
                "changed": self.files_changed,
                "unchanged": self.files_unchanged,
                "moved": self.files_moved,
                "removed": self.files_removed,
                "failed": [issue.__dict__ for issue in self.files_failed],
                "skipped": [issue.__dict__ for issue in self.files_skipped],
                "partial": [issue.__dict__ for issue in self.files_partial],
                "kinds": dict(self.kinds),
            },
            "chunks": {
                "added": self.chunks_added,
                "deleted": self.chunks_deleted,
                "total": self.chunks_total,
                "resumed": self.chunks_resumed,
            },
            "ocr": {
                "pages": self.ocr_pages,
                "seconds": round(self.ocr_seconds, 3),
                "seconds_per_page": round(self.ocr_seconds_per_page, 3),
            },
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class IngestProgress:
    """Sent when a file starts being read, after each slice of a batch is embedded, when a
    batch is written and its finished files committed: a large file sends many.

    `files_done` never goes back, nor does `chunks_added`; a reindex counts chunks in
    `files_done` and `files_total` (`unit` "chunks")."""

    files_done: int  # files finished: committed, or reported as failed
    files_total: int  # files to parse and embed in this run (new and changed); 0 while scanning
    chunks_added: int  # chunks embedded and written so far
    chunks_per_second: float
    path: str  # the file at work (a reindex: the collection)
    phase: str = WRITING  # one of PHASES
    batch_done: int = 0  # chunks of the batch at work embedded so far
    batch_total: int = 0  # chunks in that batch
    unit: str = "files"  # what files_done and files_total count
    activity: str = ""  # READING: what the parser is doing ("OCR page 3 (3/50) · 2.1 s/page")
