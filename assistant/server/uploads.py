"""Files uploaded to a collection, ingested by a job whose progress is in SQL.

Each file is written under `<temp>/assistant-uploads/<collection>/<file name>` and
ingested as that one path, so a file uploaded again under the same name replaces its
earlier version and leaves the collection's other documents alone (ingesting a
folder would remove what the folder lacks). The file is deleted once indexed: the
collection's text lives in the catalog and its vectors in Chroma, not on this replica.
The job's progress (files done, chunks written, the file being ingested) is written
after each batch of chunks, at most every `PROGRESS_EVERY_S`: it is also its heartbeat.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePath

from assistant.core import Assistant
from assistant.errors import AssistantError, CollectionBusyError, InvalidInputError
from retrievers.jobs import IngestJob, IngestJobs
from retrievers.report import IngestProgress, IngestReport

__all__ = ["UPLOAD_ROOT", "safe_file_name", "start_ingest_job"]

log = logging.getLogger(__name__)
UPLOAD_ROOT = Path(tempfile.gettempdir()) / "assistant-uploads"
BUSY_WAIT_S = 600.0
PROGRESS_EVERY_S = 1.0


def safe_file_name(name: str | None) -> str:
    """The uploaded file's own name, without any folder part; a clear error for none."""
    base = PurePath((name or "").replace("\\", "/")).name.strip()
    if not base or base in (".", "..") or base.startswith("."):
        raise InvalidInputError("file name", f"{name!r} is not a usable file name", "Upload files with a name.")
    return base


def start_ingest_job(
    bot: Assistant, jobs: IngestJobs, collection: str, user_id: str, files: dict[str, bytes]
) -> IngestJob:
    """Write the files where the job reads them and start it in a thread; returns the queued job."""
    folder = UPLOAD_ROOT / collection
    folder.mkdir(parents=True, exist_ok=True)
    job = jobs.create(collection, user_id, len(files))
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    threading.Thread(target=_run, args=(bot, jobs, job, paths), daemon=True, name=f"ingest-{job.id[:8]}").start()
    return job


def _run(bot: Assistant, jobs: IngestJobs, job: IngestJob, paths: list[Path]) -> None:
    reports: list[dict[str, object]] = []
    written = 0  # chunks written by the files done
    last = 0.0

    def running(done: int, path: Path, event: IngestProgress | None = None) -> None:
        nonlocal last
        if event is not None and time.monotonic() - last < PROGRESS_EVERY_S:
            return
        last = time.monotonic()
        chunks = written + (event.chunks_added if event else 0)
        jobs.progress(
            job.id, status="running", files_done=done, report=reports, chunks_written=chunks, current_file=path.name
        )

    try:
        for done, path in enumerate(paths):
            running(done, path)
            report = _ingest_waiting_for_the_lease(bot, path, job.collection, partial(running, done, path))
            written += report.chunks_added
            reports.append({"file": path.name, **report.to_dict()})
            path.unlink(missing_ok=True)
        jobs.progress(job.id, status="done", files_done=len(paths), report=reports, chunks_written=written)
    except AssistantError as exc:
        jobs.progress(
            job.id, status="failed", files_done=len(reports), report=reports, error=str(exc), chunks_written=written
        )
    except Exception as exc:  # recorded for the poller; the server goes on
        log.exception("ingest job %s failed", job.id)
        jobs.progress(
            job.id,
            status="failed",
            files_done=len(reports),
            report=reports,
            error=f"internal error: {exc}",
            chunks_written=written,
        )
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def _ingest_waiting_for_the_lease(
    bot: Assistant, path: Path, collection: str, on_progress: Callable[[IngestProgress], None]
) -> IngestReport:
    """Ingest one file; while another process writes the collection, wait for it."""
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            return bot.ingest(path, collection, on_progress=on_progress)
        except CollectionBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
