"""The progress bar of long document work (`ingest`, `reindex`), drawn on stderr.

It follows the run's IngestProgress events (retrievers.report): the phase, the file at
work, files (or, reindexing, chunks) done of the total, the chunks of the batch at work
and the chunks written; while a slow parser works, what it is doing instead ("OCR page 3
(3/50) · 2.1 s/page"). It is drawn only when stderr is a terminal, so piped or --json
output carries nothing extra. Imports rich only when a bar is made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress

    from retrievers.report import IngestProgress

__all__ = ["follow", "progress_bar"]


def progress_bar(label: str) -> Progress:
    """A rich progress bar on stderr when it is a terminal (else disabled): use it as a context manager."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn(f"{label} [bold]{{task.fields[phase]}}[/bold] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]} · {task.fields[chunks]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def follow(progress: Progress) -> Callable[[IngestProgress], None]:
    """The `on_progress` callback that moves `progress` with every event, redrawing at once."""
    task = progress.add_task("", total=None, phase="starting", unit="files", chunks="")

    def show(event: IngestProgress) -> None:
        batch = f"batch {event.batch_done}/{event.batch_total} · " if event.batch_total else ""
        rate = f" · {event.chunks_per_second:.0f}/s" if event.chunks_added else ""
        written = f"{batch}{event.chunks_added} chunks written{rate}"
        progress.update(
            task,
            total=event.files_total or None,  # unknown while scanning: the bar pulses
            completed=event.files_done,
            description=Path(event.path).name[:28],
            phase=event.phase,
            unit=event.unit,
            chunks=event.activity or written,
            refresh=True,  # every event drawn: a batch can take less than the auto-refresh interval
        )

    return show
