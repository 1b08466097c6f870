"""`assistant serve`: the assistant behind an OpenAI-compatible HTTP API and a web chat page.

    app          the routes (create_app), the request limits, errors as OpenAI bodies
    access       who may call: API keys, and which collections a key's user sees and changes
    access_log   the request id and one access line per request (nginx combined + rt, rid)
    body         reading a JSON body defensively (size, depth, NUL, lone surrogates)
    completions  OpenAI's chat-completions request and response objects
    errors       ApiError and the HTTP status of each of our errors
    turns        admitting turns, running them in a thread, their server-sent events
    uploads      uploaded files ingested by a job
    run          the `assistant serve` process: uvicorn, its logging, the listening line
    chat.html    the web chat page served at /

Needs the server extra (`pip install 'assistant[server]'`); importing this package
without it raises MissingExtraError (an ImportError) that says so.
"""

from assistant.extras import require_extra

require_extra("server", "assistant.server")

from assistant.server.app import create_app  # noqa: E402  (after the check, so a missing extra is named)

__all__ = ["create_app"]
