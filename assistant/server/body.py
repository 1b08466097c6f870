"""Reading a JSON request body that may be hostile.

Too large (413), nested too deep for json.loads to recurse through, not JSON, not
UTF-8, or holding a NUL character or a lone surrogate in any string or key (400, the
field named in `param`): all refused before anything else runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import Request

from assistant.errors import InvalidInputError
from assistant.server.errors import ApiError
from memory.records import check_text

__all__ = ["MAX_JSON_DEPTH", "read_json_body"]

MAX_JSON_DEPTH = 64  # arrays and objects inside one another; a chat request needs about 5


async def read_json_body(request: Request, limit: int) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise ApiError(
            415, f"Content-Type must be application/json, got '{kind or 'none'}'.", code="unsupported_media_type"
        )
    raw = bytearray()
    async for part in request.stream():  # a chunked body has no Content-Length to check up front
        raw.extend(part)
        if len(raw) > limit:
            raise ApiError(413, f"The request body is over the limit of {limit} bytes.", code="body_too_large")
    if _too_deep(bytes(raw), MAX_JSON_DEPTH):
        raise ApiError(400, f"The body nests arrays and objects more than {MAX_JSON_DEPTH} deep.", code="invalid_json")
    try:
        body = json.loads(raw)
    except ValueError as exc:  # not JSON, not UTF-8, or a number of more than 4300 digits
        raise ApiError(400, f"The body is not valid JSON ({exc}).", code="invalid_json") from None
    _check_strings(body)
    return body


# A JSON string, or the rest of the text from an unclosed one, matched without backtracking.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\[\s\S][^"\\]*)*(?:"|\\?\Z)')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than `limit`, told without parsing it:
    json.loads recurses once a level, and a few KB of brackets make it raise RecursionError."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def _check_strings(value: Any, where: str = "") -> None:
    """A 400 naming the first string (or key) holding a NUL or a lone surrogate (see check_text)."""
    try:
        if isinstance(value, str):
            check_text(where or "body", value)
        elif isinstance(value, dict):
            for name, item in value.items():
                check_text(f"a key in {where or 'the body'}", name)  # not the key itself: it cannot be shown
                _check_strings(item, f"{where}.{name}" if where else name)
        elif isinstance(value, list):
            for n, item in enumerate(value):
                _check_strings(item, f"{where}.{n}" if where else str(n))
    except InvalidInputError as exc:
        raise ApiError(400, str(exc), code="invalid_value", param=where or None) from None
