"""`assistant serve`: the assistant behind an OpenAI-compatible HTTP API and a web chat page.

Needs the server extra (`pip install 'assistant[server]'`); importing this package
without it raises MissingExtraError (an ImportError) that says so.
"""

from assistant.extras import require_extra

require_extra("server", "assistant.server")

from assistant.server.app import create_app  # noqa: E402  (after the check, so a missing extra is named)

__all__ = ["create_app"]
