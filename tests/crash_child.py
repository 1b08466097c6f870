"""Run one ingestion (or reindex) and SIGKILL itself at a chosen point of the write protocol.

    python -m tests.crash_child DATA_DIR FOLDER Class.method#N[:after]

kills the process just before (or just after) the Nth call of that method. The kill
is real: no cleanup, no finally blocks, no flush, as with `kill -9` or the OOM killer.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from assistant import Assistant, Settings
from retrievers.embedder import OnnxEmbedder
from retrievers.ledger import Ledger
from retrievers.store import ChunkStore

CLASSES: dict[str, type] = {"Ledger": Ledger, "ChunkStore": ChunkStore, "OnnxEmbedder": OnnxEmbedder}


def arm(point: str) -> None:
    where, _, when = point.partition(":")
    target, _, nth = where.partition("#")
    cls_name, method = target.split(".")
    cls = CLASSES[cls_name]
    original = getattr(cls, method)
    calls = 0

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == int(nth) and when != "after":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(self, *args, **kwargs)
        if calls == int(nth) and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(cls, method, wrapped)


def main() -> None:
    data_dir, folder, point = sys.argv[1:4]
    arm(point)
    bot = Assistant.from_settings(Settings(data_dir=Path(data_dir), embedding_batch_size=2))
    if folder.startswith("reindex:"):
        bot.reindex(folder.removeprefix("reindex:"), bot.settings.embedder_spec.__class__(backend="torch"))
    else:
        bot.ingest(folder, "docs")
    sys.exit(3)  # the kill point was never reached


if __name__ == "__main__":
    main()
