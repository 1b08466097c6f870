"""Hostile input (issue 19, finding 6): bodies nested thousands deep, lone surrogates and NUL
characters. Over HTTP each is a 400 in the OpenAI error shape with the request id, before
any turn starts, plain or streamed, and the connection serves the next request; through
`bot.ask` each is an InvalidInputError naming the value. Whatever text reaches SQL (a
model's answer, an extracted fact, an audit row) is stored without NUL on SQLite and on a
real PostgreSQL, where a NUL used to fail the write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from assistant import Assistant, InvalidInputError, Settings
from assistant.settings import ServerSettings
from memory import NewMessage, SQLMemory, create_memory_engine
from memory.audit import NewEscalation
from tests.test_server import start

# About 4 KB: json.loads recursed once a level and raised RecursionError, a plain-text 500.
DEEP = b'{"model": "handbook", "messages": ' + b"[" * 2000 + b"]" * 2000 + b"}"
GOOD = {"model": "handbook", "messages": [{"role": "user", "content": "How long is the X200 warranty?"}]}


@dataclass
class Served:
    url: str
    key: str
    bot: Assistant

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json", **extra}


@pytest.fixture(scope="module")
def served(bot: Assistant) -> Iterator[Served]:
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000))
    yield Served(url, bot.memory.keys.create("mallory").secret, bot)
    server.should_exit = True
    thread.join(timeout=10)


def assert_openai_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and error["message"], error
    assert error["request_id"] == response.headers["x-request-id"]
    if param is not None:
        assert error["param"] == param, error
    return error


def local_port(response: httpx.Response) -> int:
    """The client side of the connection a response came on."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/collections"])
def test_a_deeply_nested_body_is_a_400_and_the_connection_serves_the_next_request(served: Served, path: str) -> None:
    with httpx.Client(base_url=served.url, headers=served.headers(), limits=httpx.Limits(max_connections=1)) as client:
        first = client.get("/v1/models")
        deep = client.post(path, content=DEEP)
        error = assert_openai_error(deep, 400, "invalid_json")
        assert "deep" in error["message"]
        assert deep.headers.get("connection", "").lower() != "close"
        after = client.get("/v1/models")
        assert after.status_code == 200 and "handbook" in [m["id"] for m in after.json()["data"]]
        # One connection throughout: an exception escaping the app used to make uvicorn drop it,
        # and the next request on it was reset.
        assert local_port(first) == local_port(deep) == local_port(after)


def test_nesting_within_the_limit_is_still_read(served: Served) -> None:
    # Content parts nest a few levels; brackets inside strings do not count.
    body = {
        "model": "nope",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "[[[[" * 100}]}],
        "metadata": {"a": [[[[[[[[[[1]]]]]]]]]]},
    }
    response = httpx.post(f"{served.url}/v1/chat/completions", headers=served.headers(), json=body)
    assert_openai_error(response, 404, "model_not_found")  # parsed, validated, then the model is looked up


SURROGATE = b'"hi \\ud800 there"'
NUL = b'"my name is A\\u0000B"'


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    ("body", "param", "what"),
    [
        (
            b'{"model":"handbook","messages":[{"role":"user","content":' + SURROGATE + b"}]}",
            "messages.0.content",
            "surrogate",
        ),
        (b'{"model":"handbook","messages":[{"role":"user","content":' + NUL + b"}]}", "messages.0.content", "NUL"),
        (
            b'{"model":"handbook","messages":[{"role":"user","content":[{"type":"text","text":' + NUL + b"}]}]}",
            "messages.0.content.0.text",
            "NUL",
        ),
        (b'{"model":"handbook","user":"s\\u0000","messages":[{"role":"user","content":"hi"}]}', "user", "NUL"),
        (b'{"model":"handbook","messages":[{"role":"user","content":"hi","\\udfff":1}]}', "messages.0", "surrogate"),
    ],
    ids=["surrogate", "nul", "nul-in-a-part", "nul-in-user", "surrogate-in-a-key"],
)
def test_lone_surrogates_and_nul_are_a_400_naming_the_field(
    served: Served, body: bytes, param: str, what: str, stream: bool
) -> None:
    if stream:
        body = body[:-1] + b', "stream": true}'
    before = len(served.bot.sessions("mallory")) if "mallory" in served.bot.memory.users() else 0
    response = httpx.post(f"{served.url}/v1/chat/completions", headers=served.headers(), content=body, timeout=60)
    error = assert_openai_error(response, 400, "invalid_value", param)
    assert what in error["message"] and param in error["message"]
    assert response.headers["content-type"].startswith("application/json")  # refused before any stream began
    after = len(served.bot.sessions("mallory")) if "mallory" in served.bot.memory.users() else 0
    assert after == before  # no turn ran, nothing was stored


def test_other_bad_bodies_paths_and_routes_get_openai_errors(served: Served) -> None:
    url = served.url
    cases = [
        # Not UTF-8: the JSON cannot be read.
        (
            httpx.post(f"{url}/v1/chat/completions", headers=served.headers(), content=b'{"model":"\xff\xfe"}'),
            400,
            "invalid_json",
        ),
        # A number Python will not read (more than 4300 digits): ValueError, not JSONDecodeError.
        (
            httpx.post(
                f"{url}/v1/chat/completions", headers=served.headers(), content=b'{"max_tokens": ' + b"9" * 5000 + b"}"
            ),
            400,
            "invalid_json",
        ),
        # A surrogate's own bytes (json.loads reads them as a lone surrogate): named like the escape.
        (
            httpx.post(f"{url}/v1/chat/completions", headers=served.headers(), content=b'{"model":"\xed\xa0\x80"}'),
            400,
            "invalid_value",
        ),
        # A body streamed without Content-Length is measured as it arrives.
        (
            httpx.post(
                f"{url}/v1/chat/completions",
                headers=served.headers(),
                content=iter([b'{"model": "' + b"x" * 600_000, b"x" * 600_000 + b'"}']),
            ),
            413,
            "body_too_large",
        ),
        (
            httpx.post(f"{url}/v1/collections", headers=served.headers(), content=b'{"name": "a\\u0000b"}'),
            400,
            "invalid_value",
        ),
        (httpx.get(f"{url}/v1/sessions/s%00x", headers=served.headers()), 400, "invalid_value"),
        (httpx.get(f"{url}/v1/collections/h%00ndbook", headers=served.headers()), 400, "invalid_value"),
        (httpx.get(f"{url}/v1/sessions/%ED%A0%80", headers=served.headers()), 404, "not_found"),
        (httpx.get(f"{url}/v1/no-such-route", headers=served.headers()), 404, "not_found"),
        (httpx.put(f"{url}/v1/models", headers=served.headers()), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert_openai_error(response, status, code)
    # A file name with a NUL in an upload to a collection of her own.
    created = httpx.post(
        f"{url}/v1/collections", headers=served.headers(), json={"name": "mallory-box", "private": True}
    )
    assert created.status_code == 201, created.text
    upload = httpx.post(
        f"{url}/v1/collections/mallory-box/files",
        headers={**served.headers(), "Content-Type": "multipart/form-data; boundary=x"},
        content=b'--x\r\nContent-Disposition: form-data; name="files"; filename="a\x00.md"\r\n\r\nhi\r\n--x--\r\n',
    )
    assert_openai_error(upload, 400, "invalid_value")
    assert "file name" in upload.json()["error"]["message"]


def test_bot_ask_refuses_the_same_input_with_invalid_input_error(bot: Assistant) -> None:
    cases = [
        ({"question": "hi \ud800 there"}, "question", "surrogate"),
        ({"question": "my name is A\x00B"}, "question", "NUL"),
        ({"question": "hi", "session_id": "s\x00"}, "session id", "NUL"),
        ({"question": "hi", "user_id": "u\udc80"}, "user id", "surrogate"),
    ]
    for kwargs, what, problem in cases:
        call: dict[str, Any] = {"user_id": "ask-hostile", "session_id": "s", **kwargs}
        question = call.pop("question")
        with pytest.raises(InvalidInputError, match=problem) as raised:
            bot.ask(question, **call)
        assert raised.value.what == what
        with pytest.raises(InvalidInputError, match=problem):
            next(iter(bot.stream(question, **call)))
    with pytest.raises(InvalidInputError, match="NUL"):
        bot.remember("ask-hostile", "my name is A\x00B")
    assert "ask-hostile" not in bot.memory.users()  # nothing was stored


@contextmanager
def postgres_database(base_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own on the shared test server, dropped afterwards."""
    name = f"hostile_{tmp_path.name.lower().replace('-', '_')[-40:]}"
    admin = create_memory_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLMemory]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'memory.db'}"
        else:
            url = stack.enter_context(postgres_database(request.getfixturevalue("postgres_url"), tmp_path))
        engine = create_memory_engine(url)
        stack.callback(engine.dispose)
        yield SQLMemory(engine)


def test_text_nobody_typed_is_stored_without_nul_or_lone_surrogates(memory: SQLMemory) -> None:
    """Before: on PostgreSQL a NUL in `user_facts.quote` (or any text column) failed the write."""
    ids = memory.add_turn(
        "u\x00ser",
        "s\x00",
        NewMessage("user", "remember that my name is A\x00B"),
        NewMessage("assistant", "Noted, A\x00B \ud800.", reason="no pass\x00ages", model="m\x00"),
    )
    stored = memory.messages("user", "s")
    assert [m.content for m in stored] == ["remember that my name is AB", "Noted, AB \ufffd."]
    assert (stored[1].reason, stored[1].model) == ("no passages", "m")
    assert memory.messages("u\x00ser", "s\x00") == stored  # a query compares the same stored form

    fact = memory.facts.add(
        "user",
        "fact",
        "The user's name is A\x00B.",
        quote="remember that my name is A\x00B",
        source_message_id=ids.question_id,
    )
    assert (fact.content, fact.quote, fact.session_id) == ("The user's name is AB.", "remember that my name is AB", "s")

    memory.escalations.record(
        NewEscalation(
            user_id="user",
            session_id="s",
            collection="handbook",
            endpoint="http://127.0.0.1:1/v1",
            model="large",
            reason="low confi\x00dence",
            request={"messages": [{"role": "user", "content": "A\x00B"}]},
            status="failed",
            attempts=1,
            prompt_tokens=3,
            completion_tokens=0,
            duration_ms=1.0,
            error="bad body: \x00\x00",
        )
    )
    audit = memory.escalations.list(user_id="user")[0]
    assert (audit.reason, audit.error) == ("low confidence", "bad body: ")
    assert audit.request == {"messages": [{"role": "user", "content": "A\x00B"}]}  # JSON keeps it, escaped

    memory.ratings.rate(ids.answer_id, "rev\x00iewer", "wrong", False, comment="made up A\x00B")
    assert [(r.reviewer, r.comment) for r in memory.ratings.ratings([ids.answer_id])] == [("reviewer", "made up AB")]
    issued = memory.keys.create("user", name="bot\x00")
    assert memory.keys.list("user")[0].name == "bot" and memory.keys.verify(issued.secret) is not None


@pytest.mark.postgres
def test_the_http_api_on_postgresql_refuses_nul_before_anything_is_written(postgres_url: str, tmp_path: Path) -> None:
    """The reported failure: on PostgreSQL "remember that my name is A\\u0000B" was a 500, and
    its stream ended in an error event. Now a 400 before the turn, plain and streamed, and the
    same statement without the NUL is answered and remembered."""
    stack = ExitStack()
    url = stack.enter_context(postgres_database(postgres_url, tmp_path))
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state", database_url=url))
    stack.callback(bot.memory.engine.dispose)
    bot.create_collection("notes")
    served_url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000))
    headers = {"Authorization": f"Bearer {bot.memory.keys.create('pg-user').secret}"}
    try:
        for stream in (False, True):
            body = {
                "model": "notes",
                "stream": stream,
                "messages": [{"role": "user", "content": "Remember that my name is Ana\u0000Berg."}],
            }
            response = httpx.post(f"{served_url}/v1/chat/completions", headers=headers, json=body, timeout=120)
            assert_openai_error(response, 400, "invalid_value", "messages.0.content")
        assert "pg-user" not in bot.memory.users()
        body = {"model": "notes", "messages": [{"role": "user", "content": "My name is Ana Berg."}]}
        response = httpx.post(
            f"{served_url}/v1/chat/completions", headers={**headers, "X-Session-Id": "pg"}, json=body, timeout=300
        )
        assert response.status_code == 200, response.text
        assert bot.history("pg-user", "pg")[0].content == "My name is Ana Berg."
        assert any("Ana Berg" in f.quote for f in bot.facts("pg-user"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        stack.close()
