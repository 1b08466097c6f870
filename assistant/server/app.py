"""The HTTP API: OpenAI's chat completions and models, and native endpoints.

    app = create_app(Assistant.from_settings())     # then: uvicorn, or `assistant serve`

Every request but /health and /ready needs `Authorization: Bearer <key>` (see
memory.keys) and acts as the key's user: sessions and facts of another user are
answered 404, as if they did not exist. The app keeps no state of its own: sessions,
keys and request counts are in the SQL database, vectors in Chroma, so any number of
replicas can serve the same users.

The in-process llama.cpp model answers one turn at a time (its adapter holds a lock
for a whole generation). Turns are admitted up to `max_pending` at once; one more gets
503 with Retry-After at once rather than a connection that hangs. A turn runs to its
end in a worker thread even if the client goes away, so the session always holds the
complete answer, and the model's lock is never left held by an abandoned stream.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at
# definition time, and `Caller` is local to create_app.

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.server.completions import ChatRequest, completion, new_completion_id, session_of
from assistant.server.errors import ApiError, from_assistant_error
from assistant.server.turns import Admission, Turn, sse
from assistant.server.uploads import safe_file_name, start_ingest_job
from memory.keys import KeyInfo
from retrievers.jobs import IngestJobs

__all__ = ["ServerOptions", "create_app"]

log = logging.getLogger("assistant.server")


@dataclass(frozen=True)
class ServerOptions:
    max_body_bytes: int = 1_000_000
    max_message_chars: int = 8_000
    requests_per_minute: int = 60  # per key; 0: no limit
    max_pending: int = 8  # turns admitted at once (running or waiting for the model)
    max_upload_bytes: int = 50_000_000  # one upload request, all its files
    max_upload_files: int = 100


class NewCollection(BaseModel):
    name: str
    private: bool = False  # only its creator sees it
    local_only: bool = False  # never sent to a large model


def create_app(bot: Assistant, options: ServerOptions | None = None) -> FastAPI:
    opts = options or ServerOptions()
    admission = Admission(opts.max_pending)
    jobs = IngestJobs(bot.memory.engine)
    app = FastAPI(title="assistant", version="1", docs_url="/docs", redoc_url=None)

    # Plumbing ------------------------------------------------------------------------

    @app.middleware("http")
    async def request_id_and_limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = request_id
        started = time.perf_counter()
        length = request.headers.get("content-length")
        limit = opts.max_upload_bytes if request.url.path.endswith("/files") else opts.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            response: Response = ApiError(
                413,
                f"The request body has {length} bytes; the limit is {limit}.",
                code="body_too_large",
            ).response(request_id)
        else:
            response = await call_next(request)
            response.headers["X-Request-Id"] = request_id
        log.info(
            "%s %s %s %d %.0fms",
            request_id,
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(request.state.request_id)

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        return from_assistant_error(exc).response(request.state.request_id)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(exc.errors()).response(request.state.request_id)

    def caller(request: Request) -> KeyInfo:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(
                401,
                "Missing API key: send 'Authorization: Bearer <key>' "
                "(create one with: assistant keys create --user NAME).",
                code="invalid_api_key",
            )
        key = bot.memory.keys.verify(secret.strip())
        if key is None:
            raise ApiError(401, "Invalid or revoked API key.", code="invalid_api_key")
        if opts.requests_per_minute:
            count = bot.memory.keys.count_request(key.id)
            if count > opts.requests_per_minute:
                raise ApiError(
                    429,
                    f"More than {opts.requests_per_minute} requests this minute for this key; retry later.",
                    kind="rate_limit_error",
                    code="rate_limit_exceeded",
                    headers={"Retry-After": str(60 - int(time.time()) % 60)},
                )
        return key

    Caller = Annotated[KeyInfo, Depends(caller)]

    # OpenAI-compatible ---------------------------------------------------------------

    @app.get("/v1/models")
    def models(key: Caller) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "assistant"}
                for name in bot.collections(visible_to=key.user_id)
            ],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request, key: Caller) -> Response:
        body = await _json_body(request, opts.max_body_bytes)
        try:
            chat = ChatRequest.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc.errors()) from None
        if chat.model not in bot.collections(visible_to=key.user_id):
            raise ApiError(
                404,
                f"The model '{chat.model}' does not exist; GET /v1/models lists the collections you can ask.",
                code="model_not_found",
                param="model",
            )
        question = chat.question().strip()
        if not question:
            raise ApiError(400, "The last user message is empty.", code="invalid_value", param="messages")
        if len(question) > opts.max_message_chars:
            raise ApiError(
                400,
                f"The question has {len(question)} characters; the limit is {opts.max_message_chars}.",
                code="context_length_exceeded",
                param="messages",
            )
        session_id = session_of(chat, request.headers.get("x-session-id"), key.id)
        admission.enter()
        turn = Turn(
            lambda: bot.stream(
                question, user_id=key.user_id, session_id=session_id, collection=chat.model, route=chat.route
            ),
            admission,
        )
        completion_id = new_completion_id()
        if not chat.stream:
            reply = await turn.reply()
            return JSONResponse(completion(completion_id, chat.model, reply, session_id))
        # A mistake the pipeline finds before answering (route="large" with no large model)
        # is still an HTTP error, not an error event inside a 200 stream.
        await turn.started()
        return StreamingResponse(
            sse(turn, completion_id, chat.model, session_id, request.state.request_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # Native --------------------------------------------------------------------------

    @app.get("/v1/collections")
    def list_collections(key: Caller) -> dict[str, Any]:
        return {"data": [_collection_json(bot, name) for name in bot.collections(visible_to=key.user_id)]}

    @app.post("/v1/collections", status_code=201)
    def create_collection(spec: NewCollection, key: Caller) -> dict[str, Any]:
        bot.create_collection(spec.name, local_only=spec.local_only, owner=key.user_id if spec.private else None)
        return _collection_json(bot, spec.name)

    @app.get("/v1/collections/{name}")
    def describe_collection(name: str, key: Caller) -> dict[str, Any]:
        return _collection_json(bot, _visible(bot, name, key))

    @app.delete("/v1/collections/{name}")
    def delete_collection(name: str, key: Caller) -> dict[str, Any]:
        info = bot.describe_collection(_visible(bot, name, key))
        if info.owner != key.user_id:
            raise ApiError(
                403,
                f"Collection '{name}' is shared: delete it with the CLI (assistant collections delete {name}).",
                code="forbidden",
            )
        bot.delete_collection(name)
        return {"deleted": name}

    @app.post("/v1/collections/{name}/files", status_code=202)
    async def upload_files(name: str, request: Request, key: Caller) -> dict[str, Any]:
        _visible(bot, name, key)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "Upload files as multipart/form-data, field 'files'.", code="unsupported_media_type")
        form = await request.form(max_files=opts.max_upload_files)
        files: dict[str, bytes] = {}
        for item in form.getlist("files"):
            if isinstance(item, str):
                raise ApiError(400, "Field 'files' must hold files, not text.", code="invalid_value", param="files")
            files[safe_file_name(item.filename)] = await item.read()
        if not files:
            raise ApiError(
                400, "No file uploaded: send them in the field 'files'.", code="invalid_value", param="files"
            )
        job = start_ingest_job(bot, jobs, name, key.user_id, files)
        return {"job": job.to_dict()}

    @app.get("/v1/jobs/{job_id}")
    def ingest_job(job_id: str, key: Caller) -> dict[str, Any]:
        job = jobs.get(job_id, key.user_id)
        if job is None:
            raise ApiError(404, f"No ingestion job '{job_id}'.", code="not_found")
        return {"job": job.to_dict()}

    @app.get("/v1/sessions")
    def list_sessions(key: Caller) -> dict[str, Any]:
        return {"data": [_jsonable(asdict(s)) for s in bot.sessions(key.user_id)]}

    @app.get("/v1/sessions/{session_id}")
    def show_session(session_id: str, key: Caller) -> dict[str, Any]:
        return {
            "session_id": session_id,
            "messages": [_jsonable(asdict(m)) for m in bot.history(key.user_id, session_id)],
        }

    @app.get("/v1/sessions/{session_id}/export")
    def export_session(session_id: str, key: Caller) -> dict[str, Any]:
        return _jsonable(bot.export_session(key.user_id, session_id))

    @app.delete("/v1/sessions/{session_id}")
    def delete_session(session_id: str, key: Caller) -> dict[str, Any]:
        bot.delete_session(key.user_id, session_id)
        return {"deleted": session_id}

    @app.get("/v1/memory/facts")
    def list_facts(key: Caller) -> dict[str, Any]:
        return {"data": [_jsonable(asdict(f)) for f in bot.facts(key.user_id)]}

    @app.delete("/v1/memory/facts/{fact_id}")
    def forget_fact(fact_id: int, key: Caller) -> dict[str, Any]:
        bot.forget(key.user_id, fact_id)
        return {"deleted": fact_id}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    def ready(request: Request) -> JSONResponse:
        checks = _readiness(bot)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
        )

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return resources.files("assistant.server").joinpath("chat.html").read_text(encoding="utf-8")

    return app


async def _json_body(request: Request, limit: int) -> Any:
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
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"The body is not valid JSON ({exc}).", code="invalid_json") from None


def _invalid(errors: Any) -> ApiError:
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return ApiError(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", code="invalid_value", param=where or None)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _visible(bot: Assistant, name: str, key: KeyInfo) -> str:
    """The collection's name if the key's user may see it; otherwise 404, as if it did not exist."""
    if name not in bot.collections(visible_to=key.user_id):
        raise ApiError(404, f"No collection '{name}'.", code="not_found")
    return name


def _collection_json(bot: Assistant, name: str) -> dict[str, Any]:
    info = bot.describe_collection(name)
    return _jsonable(asdict(info))


def _readiness(bot: Assistant) -> dict[str, str]:
    """Whether the engines this replica depends on answer: the SQL database and Chroma."""
    from sqlalchemy import text

    checks: dict[str, str] = {}
    try:
        with bot.memory.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is shown
        checks["database"] = f"failed: {type(exc).__name__}"
    try:
        bot.index.store.client.heartbeat()
        checks["chroma"] = "ok"
    except Exception as exc:
        checks["chroma"] = f"failed: {type(exc).__name__}"
    return checks
