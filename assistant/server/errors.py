"""Errors as OpenAI clients expect them: `{"error": {"message", "type", "param", "code"}}`.

Every error response carries the request id (also in the `X-Request-Id` header and the
log line of the request), so that a user's report can be matched with the server log.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from assistant.errors import (
    AssistantError,
    CollectionBusyError,
    CollectionExistsError,
    InvalidInputError,
    RuntimeFailure,
    UnknownCollectionError,
    UnknownFactError,
    UnknownSessionError,
)
from retrievers.naming import shown_name

__all__ = ["ApiError", "from_assistant_error"]


class ApiError(Exception):
    """An HTTP error with an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
                "request_id": request_id,
            }
        }

    def response(self, request_id: str) -> JSONResponse:
        return JSONResponse(
            self.body(request_id), status_code=self.status, headers={**self.headers, "X-Request-Id": request_id}
        )


def from_assistant_error(exc: AssistantError) -> ApiError:
    """The HTTP status of each error the framework raises on purpose."""
    if isinstance(exc, UnknownCollectionError):
        # Not str(exc): it lists every collection, other users' private ones included.
        return ApiError(
            404,
            f"The collection '{shown_name(exc.collection)}' does not exist; GET /v1/models lists yours.",
            code="model_not_found",
            param="model",
        )
    if isinstance(exc, (UnknownSessionError, UnknownFactError)):
        return ApiError(404, str(exc), code="not_found")
    if isinstance(exc, CollectionExistsError):
        return ApiError(409, str(exc), code="conflict")
    if isinstance(exc, CollectionBusyError):
        return ApiError(409, str(exc), code="busy", headers={"Retry-After": "10"})
    if isinstance(exc, RuntimeFailure):
        return ApiError(503, str(exc), kind="server_error", code="unavailable", headers={"Retry-After": "5"})
    code = "invalid_value" if isinstance(exc, InvalidInputError) else None
    return ApiError(400, str(exc), code=code)
