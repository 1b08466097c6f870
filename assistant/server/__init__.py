"""`assistant serve`: the assistant behind an OpenAI-compatible HTTP API and a web chat page."""

from assistant.server.app import ServerOptions, create_app

__all__ = ["ServerOptions", "create_app"]
