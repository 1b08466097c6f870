"""One access line per request, written when its response has been sent, and the request id.

An ASGI middleware, outermost in the app, so its time covers a whole streamed answer and
every response (a 413 refused before the route included) carries `X-Request-Id`. The
line is nginx's "combined" format with the response time and the request id appended:

    127.0.0.1 - alice [05/Jun/2025:14:03:07 +0000] "GET /v1/models HTTP/1.1" 200 98 "-" "curl/8.5.0"
        rt=3ms rid=9c1e0b7d4a2f4e11                                           (one line)

The values of query parameters named like a credential (`api_key`, `token`, `secret`,
`password`, ...) are written as `***`: a key is never accepted there, but people try.

It goes to the `assistant.server.access` logger at INFO; `assistant serve` prints it on
stderr, an app embedding `create_app` routes it where its own logging config says.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "AccessLog"]

ACCESS_LOGGER = "assistant.server.access"
log = logging.getLogger(ACCESS_LOGGER)

# A caller's own X-Request-Id is kept when it is a plain token; anything else (spaces, quotes,
# control characters, kilobytes) would let a client forge or break log lines, so it is replaced.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\]')
# A name ending in a credential word (api_key, apiKey, apikey, access_token), not one holding it (keyword).
_SECRET_NAME = re.compile(r"(?:^|[_\-.\s]|(?<=[a-z]))(?:key|token|secret|password|passwd)s?$", re.IGNORECASE)


def _masked(query: str) -> str:
    """The query string with the value of each credential-like parameter replaced by ***."""
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        # Decoded, so that api%5Fkey or api+key cannot slip past.
        parts.append(f"{name}=***" if eq and _SECRET_NAME.search(unquote_plus(name)) else part)
    return "&".join(parts)


def _escaped(text: str) -> str:
    """As nginx writes a field: quotes, backslashes and control characters as \\xHH."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02X}", text)


class AccessLog:
    """Gives each HTTP request an id (`scope["state"]["request_id"]`, the `X-Request-Id`
    response header) and logs one line for it once its response is sent, or abandoned.
    A route may name the caller by setting `request.state.user_id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _GOOD_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        sent = 0

        async def send_logged(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*kept, (b"x-request-id", request_id.encode())]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            # The app returns once the last byte is sent (a stream's too), or fails: one line either way.
            self._write(scope, headers, state, status or 500, sent, started)

    @staticmethod
    def _write(
        scope: Scope, headers: dict[str, str], state: dict[str, Any], status: int, sent: int, started: float
    ) -> None:
        client = scope.get("client")
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            path += "?" + _masked(scope["query_string"].decode("latin-1"))
        log.info(
            '%s - %s [%s] "%s %s HTTP/%s" %d %s "%s" "%s" rt=%.0fms rid=%s',
            client[0] if client else "-",
            _escaped(str(state.get("user_id") or "-")),
            time.strftime("%d/%b/%Y:%H:%M:%S %z"),
            scope["method"],
            _escaped(path),
            scope.get("http_version", "1.1"),
            status,
            sent if sent else "-",
            _escaped(headers.get("referer", "-")),
            _escaped(headers.get("user-agent", "-")),
            (time.perf_counter() - started) * 1000,
            state["request_id"],
        )
