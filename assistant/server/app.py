"""The HTTP API: OpenAI's chat completions and models, and native endpoints.

    app = create_app(Assistant.from_settings())     # then: uvicorn, or `assistant serve`

Every request but /health, /ready and the web page at / needs `Authorization: Bearer <key>`
(the OpenAPI schema at /openapi.json too) and acts as the key's user; who sees and may
change which collection is `server.access`. There is no /docs page: Swagger UI needs a
header a browser does not send and scripts from a CDN, and the server works offline.
Each request gets an id and one access line (`server.access_log`).

Bodies are read by `server.body.read_json_body`: too large (413), nested too deep, not JSON, or holding
a NUL character or a lone surrogate anywhere (400) are refused before anything else
runs. Every error, an unexpected one included, is an OpenAI error body with the
request id, and leaves the connection usable.

The app keeps no state of its own: sessions, keys and request counts are in the SQL
database, vectors in Chroma, so any number of replicas can serve the same users.

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
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.core import Assistant
from assistant.errors import AssistantError, InvalidInputError
from assistant.server.access import authenticate, collections_of, may_write, suggestion, visible, writable
from assistant.server.access_log import AccessLog
from assistant.server.body import read_json_body
from assistant.server.completions import ChatRequest, completion, new_completion_id, session_of
from assistant.server.errors import ApiError, from_assistant_error
from assistant.server.turns import Admission, Turn, sse
from assistant.server.uploads import safe_file_name, start_ingest_job
from assistant.settings import ServerSettings
from memory.keys import KeyInfo
from memory.records import check_text
from retrievers.jobs import IngestJob, IngestJobs
from retrievers.naming import shown_name

__all__ = ["create_app"]

MAX_UPLOAD_FILES = 100  # files in one upload request

log = logging.getLogger("assistant.server")


class NewCollection(BaseModel):
    name: str
    private: bool = False  # only its creator sees it
    local_only: bool = False  # never sent to a large model


def create_app(bot: Assistant, server: ServerSettings | None = None) -> FastAPI:
    """The HTTP API over `bot`, limited by `server` (default: the assistant's own server settings).
    One upload request may carry up to max_file_mb of files."""
    opts = server or bot.settings.server
    max_upload_bytes = int(bot.settings.max_file_mb * 1024 * 1024)
    admission = Admission(opts.server_max_pending)
    jobs = IngestJobs(bot.memory.engine)
    # No docs pages; the schema route is ours (below), behind the key like every route of the API.
    app = FastAPI(title="assistant", version="1", docs_url=None, redoc_url=None, openapi_url=None)

    # Plumbing ------------------------------------------------------------------------

    @app.middleware("http")
    async def limits(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.state.request_id  # AccessLog's, which also puts it in the X-Request-Id header
        length = request.headers.get("content-length")
        limit = max_upload_bytes if request.url.path.endswith("/files") else opts.server_max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            response: Response = ApiError(
                413,
                f"The request body has {length} bytes; the limit is {limit}.",
                code="body_too_large",
            ).response(request_id)
        elif "\x00" in request.url.path:  # a NUL is no part of any name or id we keep
            response = ApiError(400, "The path holds a NUL character (%00); remove it.", code="invalid_value").response(
                request_id
            )
        else:
            try:
                response = await call_next(request)
            except Exception:
                # Our bug, not the caller's: still an OpenAI error with the request id, and the
                # connection stays open (an exception escaping the app makes uvicorn drop it).
                log.exception("%s: the request failed", request_id)
                response = ApiError(
                    500, f"Internal error; report request id {request_id}.", kind="server_error", code="internal_error"
                ).response(request_id)
        return response

    app.add_middleware(AccessLog)  # added last: outermost, so it times and ids every response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(request.state.request_id)

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        return from_assistant_error(exc).response(request.state.request_id)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(exc.errors()).response(request.state.request_id)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes, wrong methods, malformed multipart bodies: the same error shape.
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        error = ApiError(exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {}))
        return error.response(request.state.request_id)

    def caller(request: Request) -> KeyInfo:
        key = authenticate(bot, request.headers.get("authorization", ""), opts.server_requests_per_minute)
        request.state.user_id = key.user_id  # for the access line
        return key

    Caller = Annotated[KeyInfo, Depends(caller)]

    # OpenAI-compatible ---------------------------------------------------------------

    @app.get("/v1/models")
    def models(key: Caller) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "assistant"}
                for name in sorted(collections_of(bot, key))
            ],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request, key: Caller) -> Response:
        body = await read_json_body(request, opts.server_max_body_bytes)
        try:
            chat = ChatRequest.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc.errors()) from None
        seen = collections_of(bot, key)
        collection = seen.get(chat.model)
        if collection is None:
            raise ApiError(
                404,
                f"The model '{chat.model}' does not exist; {suggestion(chat.model, seen)}"
                "GET /v1/models lists the collections you can ask.",
                code="model_not_found",
                param="model",
            )
        question = chat.question().strip()
        if not question:
            raise ApiError(400, "The last user message is empty.", code="invalid_value", param="messages")
        if len(question) > opts.server_max_message_chars:
            raise ApiError(
                400,
                f"The question has {len(question)} characters; the limit is {opts.server_max_message_chars}.",
                code="context_length_exceeded",
                param="messages",
            )
        instructions = chat.instructions()
        if instructions is not None and len(instructions) > opts.server_max_message_chars:
            raise ApiError(
                400,
                f"The system messages have {len(instructions)} characters; the limit is "
                f"{opts.server_max_message_chars}. Shorten them.",
                code="context_length_exceeded",
                param=chat.instructions_param(),
            )
        max_tokens, cap_field = chat.answer_cap()
        session_id = session_of(chat, request.headers.get("x-session-id"), key.id)
        admission.enter()
        turn = Turn(
            lambda: bot.stream(
                question,
                user_id=key.user_id,
                session_id=session_id,
                collection=collection,
                route=chat.route,
                instructions=instructions,
                max_tokens=max_tokens,
            ),
            admission,
        )
        completion_id = new_completion_id()
        try:
            if not chat.stream:
                reply = await turn.reply()
                return JSONResponse(completion(completion_id, chat.model, reply, session_id))
            # A mistake the pipeline finds before answering (route="large" with no large model, system
            # messages over the prompt budget) is still an HTTP error, not an error event in a 200 stream.
            await turn.started()
        except InvalidInputError as exc:
            raise _refused_turn(exc, chat, cap_field) from None
        return EventSourceResponse(
            sse(turn, completion_id, chat.model, session_id, request.state.request_id),
            headers={"Cache-Control": "no-cache"},
            sep="\n",  # byte for byte as OpenAI frames its events
        )

    # Native --------------------------------------------------------------------------

    @app.get("/v1/collections")
    def list_collections(key: Caller) -> dict[str, Any]:
        return {"data": [_collection_json(bot, stored, key) for stored in collections_of(bot, key).values()]}

    @app.post("/v1/collections", status_code=201)
    async def create_collection(request: Request, key: Caller) -> dict[str, Any]:
        body = await read_json_body(request, opts.server_max_body_bytes)
        try:
            spec = NewCollection.model_validate(body)
        except ValidationError as exc:
            raise _invalid(exc.errors()) from None

        def create() -> dict[str, Any]:
            info = bot.create_collection(
                spec.name,
                local_only=spec.local_only,
                owner=key.user_id if spec.private else None,
                created_by=key.user_id,
            )
            return _collection_json(bot, info.name, key)

        return await run_in_threadpool(create)

    @app.get("/v1/collections/{name}")
    def describe_collection(name: str, key: Caller) -> dict[str, Any]:
        return _collection_json(bot, visible(bot, name, key), key)

    @app.delete("/v1/collections/{name}")
    def delete_collection(name: str, key: Caller) -> dict[str, Any]:
        bot.delete_collection(writable(bot, name, key))
        return {"deleted": name}

    @app.post("/v1/collections/{name}/files", status_code=202)
    async def upload_files(name: str, request: Request, key: Caller) -> dict[str, Any]:
        collection = await run_in_threadpool(writable, bot, name, key)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "Upload files as multipart/form-data, field 'files'.", code="unsupported_media_type")
        form = await request.form(max_files=MAX_UPLOAD_FILES)
        files: dict[str, bytes] = {}
        for item in form.getlist("files"):
            if isinstance(item, str):
                raise ApiError(400, "Field 'files' must hold files, not text.", code="invalid_value", param="files")
            check_text("file name", item.filename or "")
            files[safe_file_name(item.filename)] = await item.read()
        if not files:
            raise ApiError(
                400, "No file uploaded: send them in the field 'files'.", code="invalid_value", param="files"
            )
        job = start_ingest_job(bot, jobs, collection, key.user_id, files)
        return {"job": _job_json(job)}

    @app.get("/v1/jobs/{job_id}")
    def ingest_job(job_id: str, key: Caller) -> dict[str, Any]:
        job = jobs.get(job_id, key.user_id)
        if job is None:
            raise ApiError(404, f"No ingestion job '{job_id}'.", code="not_found")
        return {"job": _job_json(job)}

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

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(key: Caller) -> JSONResponse:
        return JSONResponse(app.openapi())

    return app


def _invalid(errors: Any) -> ApiError:
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return ApiError(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", code="invalid_value", param=where or None)


def _refused_turn(exc: InvalidInputError, chat: ChatRequest, cap_field: str) -> ApiError | InvalidInputError:
    """A value the turn refused, named as the request spelled it; other refusals as they are."""
    if exc.what == "instructions":
        return ApiError(
            400,
            f"The system messages do not fit the prompt: {exc.problem}. {exc.fix or 'Shorten them.'}",
            code="context_length_exceeded",
            param=chat.instructions_param(),
        )
    if exc.what == "max_tokens":
        return ApiError(400, f"{cap_field}: {exc.problem}.", code="invalid_value", param=cap_field)
    return exc


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _collection_json(bot: Assistant, stored: str, key: KeyInfo) -> dict[str, Any]:
    info = bot.describe_collection(stored)
    shown = {**asdict(info), "name": shown_name(stored), "writable": may_write(info, key)}
    del shown["created_by"]  # another user's id is theirs to tell
    return _jsonable(shown)


def _job_json(job: IngestJob) -> dict[str, Any]:
    return {**job.to_dict(), "collection": shown_name(job.collection)}


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
