"""The limits of one HTTP server, as `create_app` takes them.

`ServerOptions.from_settings` reads them from the settings' `server` group (and the
upload limit from the documents group); tests and embedders build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.settings import Settings

__all__ = ["ServerOptions"]


@dataclass(frozen=True)
class ServerOptions:
    max_body_bytes: int = 1_000_000
    max_message_chars: int = 8_000
    requests_per_minute: int = 60  # per key; 0: no limit
    max_pending: int = 8  # turns admitted at once (running or waiting for the model)
    max_upload_bytes: int = 50_000_000  # one upload request, all its files
    max_upload_files: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerOptions:
        server = settings.server
        return cls(
            max_body_bytes=server.server_max_body_bytes,
            max_message_chars=server.server_max_message_chars,
            requests_per_minute=server.server_requests_per_minute,
            max_pending=server.server_max_pending,
            max_upload_bytes=int(settings.documents.max_file_mb * 1024 * 1024),
        )
