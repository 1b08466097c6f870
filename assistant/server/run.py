"""The `assistant serve` process: uvicorn with our logging, and the line saying where it listens.

Logging is configured here, for the process `assistant serve` runs, never by `create_app`:
the access lines (`assistant.server.access`, see server.access_log) and the server's own
messages go to stderr through their own handlers, so the CLI's root handler does not
print them twice; uvicorn's start-up chatter is left at WARNING and its access log off,
since ours carries the request id and the time of the whole response.

Ctrl-C (SIGINT) or SIGTERM stops it cleanly: uvicorn stops accepting connections and
lets open requests finish (a second Ctrl-C cuts them short), then "stopped" is logged
and `serve` returns, so the process exits 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

__all__ = ["LOG_CONFIG", "serve"]

log = logging.getLogger("assistant.server")

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,  # our modules' loggers exist already (imported above)
    "formatters": {
        "plain": {"format": "%(message)s"},
        "server": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "access": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
        "server": {"class": "logging.StreamHandler", "formatter": "server", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "assistant.server.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "assistant.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["server"], "level": "WARNING", "propagate": False},
    },
}


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own re-raises the signal once shut down, for a program that embeds it; for
        # `assistant serve` a signal is the way to stop, not a failure (a re-raised SIGINT is
        # click's "Aborted!" and exit 1, a SIGTERM the default action and exit 143).
        if threading.current_thread() is not threading.main_thread():  # only it may set handlers
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            log.info(
                "stopping on %s: open requests may finish (Ctrl-C again to cut them short)", signal.Signals(sig).name
            )
        super().handle_exit(sig, frame)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:  # bound: the port is the real one, even for --port 0
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info(
                "listening on http://%s:%d (web chat at /, OpenAPI schema at /openapi.json with a key; Ctrl-C to stop)",
                shown,
                port,
            )


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run `app` until Ctrl-C or SIGTERM, logging as the module docstring says."""
    config = uvicorn.Config(app, host=host, port=port, log_config=LOG_CONFIG, access_log=False)
    _Server(config).run()
    log.info("stopped")
