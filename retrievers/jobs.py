"""Ingestion jobs of uploaded files, recorded in SQL so that any replica can report them.

The replica that received an upload runs its job in a thread and writes its progress
(files done, chunks written, the file being ingested) after every file and every
batch of chunks; polling may reach any replica. A job whose replica died stops
beating: after `STALE_AFTER_S` without progress it reads as failed, and uploading the
files again is safe (ingestion is a sync: what was already indexed is not redone, and
a large file resumes where it stopped).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from memory.engine import write_transaction
from retrievers.catalog_tables import ingest_jobs

__all__ = ["STALE_AFTER_S", "IngestJob", "IngestJobs"]

STALE_AFTER_S = 600


@dataclass(frozen=True)
class IngestJob:
    id: str
    collection: str
    user_id: str
    status: str  # queued, running, done, failed
    files_total: int
    files_done: int
    report: list[dict[str, Any]] | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    chunks_written: int = 0  # by this job so far, the file being ingested included
    current_file: str | None = None  # the file being ingested, while running

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "collection": self.collection,
            "status": self.status,
            "files_total": self.files_total,
            "files_done": self.files_done,
            "chunks_written": self.chunks_written,
            "current_file": self.current_file,
            "reports": self.report or [],
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite returns naive datetimes


class IngestJobs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with write_transaction(self.engine) as conn:
            yield conn

    def create(self, collection: str, user_id: str, files_total: int) -> IngestJob:
        job_id = uuid.uuid4().hex
        now = _now()
        with self._tx() as conn:
            conn.execute(
                insert(ingest_jobs).values(
                    id=job_id,
                    collection=collection,
                    user_id=user_id,
                    status="queued",
                    files_total=files_total,
                    files_done=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        found = self.get(job_id, user_id)
        assert found is not None
        return found

    def progress(
        self,
        job_id: str,
        *,
        status: str,
        files_done: int,
        report: list[dict[str, Any]],
        error: str | None = None,
        chunks_written: int = 0,
        current_file: str | None = None,
    ) -> None:
        # The report column holds the running counts too: no schema change for them.
        stored = {"files": report, "chunks_written": chunks_written, "current_file": current_file}
        with self._tx() as conn:
            conn.execute(
                update(ingest_jobs)
                .where(ingest_jobs.c.id == job_id)
                .values(status=status, files_done=files_done, report=stored, error=error, updated_at=_now())
            )

    def get(self, job_id: str, user_id: str) -> IngestJob | None:
        """The user's job; another user's job is None, as if it did not exist."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ingest_jobs).where(ingest_jobs.c.id == job_id, ingest_jobs.c.user_id == user_id)
            ).first()
        if row is None:
            return None
        stored = row.report if isinstance(row.report, dict) else {"files": row.report}  # a list: written before
        job = IngestJob(
            row.id,
            row.collection,
            row.user_id,
            row.status,
            row.files_total,
            row.files_done,
            stored.get("files"),
            row.error,
            _aware(row.created_at),
            _aware(row.updated_at),
            int(stored.get("chunks_written") or 0),
            stored.get("current_file"),
        )
        if job.status in ("queued", "running") and _now() - job.updated_at > timedelta(seconds=STALE_AFTER_S):
            return IngestJob(
                **{**job.__dict__, "status": "failed", "error": "interrupted: its server stopped; upload again"}
            )
        return job
