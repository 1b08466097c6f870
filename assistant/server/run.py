"""The `assistant serve` process: uvicorn with our logging, and the line saying where it listens.

Logging is configured here, for the process `assistant serve` runs, never by `create_app`:
the access lines (`assistant.server.access`, see server.access_log) and the server's own
messages go to stderr through their own handlers, so the CLI's root handler does not
print them twice; uvicorn's start-up chatter is left at WARNING and its access log off,
since ours carries the request id and the time of the whole response.
"""

from __future__ import annotations

import logging
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
    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:  # bound: the port is the real one, even for --port 0
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info(
                "listening on http://%s:%d (web chat at /, API docs at /docs with a key; Ctrl-C to stop)", shown, port
            )


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run `app` until Ctrl-C or SIGTERM, logging as the module docstring says."""
    config = uvicorn.Config(app, host=host, port=port, log_config=LOG_CONFIG, access_log=False)
    _Server(config).run()
