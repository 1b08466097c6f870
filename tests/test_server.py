"""`assistant serve` over HTTP with real clients: the official openai client (plain and
streaming), LangChain's ChatOpenAI, and raw requests for keys, isolation, limits and
bad input. The server is uvicorn on loopback in front of the session's assistant
(real model, embedder, Chroma and SQLite)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from assistant import Assistant
from assistant.server import create_app
from assistant.settings import ServerSettings
from retrievers.naming import shown_name

pytestmark = pytest.mark.llm

QUESTION = "How long is the warranty of the X200?"


def says_24_months(text: str) -> bool:
    return re.search(r"24[- ]months?", text) is not None


@dataclass
class Served:
    url: str
    alice: str  # an API key of user alice
    bob: str  # an API key of user bob
    bot: Assistant

    def headers(self, key: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.alice}", **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(bot: Assistant, options: ServerSettings) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(bot, options), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def served(bot: Assistant) -> Iterator[Served]:
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000))
    yield Served(url, bot.memory.keys.create("alice").secret, bot.memory.keys.create("bob").secret, bot)
    server.should_exit = True
    thread.join(timeout=10)


def test_the_openai_client_asks_plain_and_streaming(served: Served) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{served.url}/v1", api_key=served.alice)
    assert "handbook" in [m.id for m in client.models.list()]

    plain = client.chat.completions.create(
        model="handbook", messages=[{"role": "user", "content": QUESTION}], extra_headers={"X-Session-Id": "oa-1"}
    )
    answer = plain.choices[0].message.content or ""
    extra = plain.model_extra or {}
    assert says_24_months(answer)
    assert extra["assistant"]["route"] == "local" and extra["assistant"]["session_id"] == "oa-1"
    assert any(s["file"] == "x200_manual.md" for s in extra["assistant"]["sources"])
    assert plain.usage is not None and plain.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model="handbook",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Session-Id": "oa-2"},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert says_24_months(text) and last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.total_tokens > 0
    assert (last.model_extra or {})["assistant"]["route"] == "local"
    # The streamed text is the stored answer, exactly.
    stored = served.bot.history("alice", "oa-2")
    assert [m.role for m in stored] == ["user", "assistant"] and stored[1].content == text


def test_langchain_chat_openai_talks_to_it(served: Served) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        base_url=f"{served.url}/v1",
        api_key=served.alice,  # type: ignore[arg-type]
        model="handbook",
        default_headers={"X-Session-Id": "lc-1"},
    )
    assert says_24_months(str(chat.invoke(QUESTION).content))
    assert says_24_months("".join(str(c.content) for c in chat.stream(QUESTION)))


def test_a_client_resending_the_whole_conversation_stores_each_turn_once(served: Served) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    first = httpx.post(
        f"{served.url}/v1/chat/completions",
        headers=served.headers(),
        json={"model": "handbook", "messages": messages},
        timeout=120,
    ).json()
    session = first["assistant"]["session_id"]
    messages += [
        {"role": "assistant", "content": first["choices"][0]["message"]["content"]},
        {"role": "user", "content": "And what does error E17 mean?"},
    ]
    second = httpx.post(
        f"{served.url}/v1/chat/completions",
        headers=served.headers(),
        json={"model": "handbook", "messages": messages},
        timeout=120,
    ).json()
    assert second["assistant"]["session_id"] == session  # derived from the first question, so stable
    stored = served.bot.history("alice", session)
    assert [(m.role, m.content) for m in stored][::2] == [("user", QUESTION), ("user", "And what does error E17 mean?")]
    assert len(stored) == 4


def test_keys_and_isolation(served: Served) -> None:
    url = served.url
    assert httpx.get(f"{url}/v1/models").status_code == 401
    wrong = httpx.get(f"{url}/v1/models", headers=served.headers("ak_not-a-key"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    httpx.post(
        f"{url}/v1/chat/completions",
        headers=served.headers(**{"X-Session-Id": "private"}),
        json={"model": "handbook", "messages": [{"role": "user", "content": QUESTION}]},
        timeout=120,
    ).raise_for_status()
    mine = httpx.get(f"{url}/v1/sessions/private", headers=served.headers())
    assert mine.status_code == 200 and len(mine.json()["messages"]) == 2
    # Bob cannot see, export or delete alice's session: to him it does not exist.
    for method, path in [
        ("GET", "/v1/sessions/private"),
        ("GET", "/v1/sessions/private/export"),
        ("DELETE", "/v1/sessions/private"),
    ]:
        response = httpx.request(method, f"{url}{path}", headers=served.headers(served.bob))
        assert response.status_code == 404, (method, path)
    assert "private" not in [
        s["session_id"] for s in httpx.get(f"{url}/v1/sessions", headers=served.headers(served.bob)).json()["data"]
    ]
    assert len(served.bot.history("alice", "private")) == 2
    # A revoked key stops at once.
    issued = served.bot.memory.keys.create("carol")
    assert httpx.get(f"{url}/v1/models", headers=served.headers(issued.secret)).status_code == 200
    served.bot.memory.keys.revoke(issued.info.id)
    assert httpx.get(f"{url}/v1/models", headers=served.headers(issued.secret)).status_code == 401


def test_bad_input_gets_an_openai_error_and_a_request_id(served: Served) -> None:
    url = f"{served.url}/v1/chat/completions"
    good = {"model": "handbook", "messages": [{"role": "user", "content": QUESTION}]}

    def post(body: object = None, raw: bytes | None = None, kind: str = "application/json") -> httpx.Response:
        if raw is None:
            raw = json.dumps(body).encode()
        return httpx.post(url, headers=served.headers(**{"Content-Type": kind}), content=raw)

    too_long = {**good, "messages": [{"role": "user", "content": "x" * 9000}]}
    cases = [
        (post(raw=b"{not json"), 400, "invalid_json"),
        (post(good, kind="text/plain"), 415, "unsupported_media_type"),
        (post({**good, "model": "nope"}), 404, "model_not_found"),
        (post({"model": "handbook", "messages": []}), 400, "invalid_value"),
        (post(too_long), 400, "context_length_exceeded"),
        (post(raw=b" " * 1_100_000), 413, "body_too_large"),
    ]
    # route="large" with no large model configured: a 400 naming the setting, streamed or not.
    for stream in (False, True):
        large = post({**good, "route": "large", "stream": stream})
        assert large.status_code == 400 and "fallback_base_url" in large.json()["error"]["message"]
    for response, status, code in cases:
        body = response.json()
        assert response.status_code == status, body
        assert body["error"]["code"] == code and body["error"]["message"]
        assert body["error"]["request_id"] == response.headers["x-request-id"]


def test_requests_over_the_limit_get_429_with_retry_after(bot: Assistant) -> None:
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=3))
    try:
        key = bot.memory.keys.create("limited").secret
        statuses = [httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}) for _ in range(5)]
        assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
        limited = statuses[3]
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.json()["error"]["type"] == "rate_limit_error"
        # Another key has its own count.
        other = bot.memory.keys.create("unlimited").secret
        assert httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_health_ready_and_the_chat_page(served: Served) -> None:
    assert httpx.get(f"{served.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{served.url}/ready").json()
    assert ready["status"] == "ready" and ready["checks"] == {"database": "ok", "chroma": "ok"}
    page = httpx.get(f"{served.url}/")
    assert page.status_code == 200 and "<title>assistant</title>" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no external assets


def test_sixteen_concurrent_streams_complete_or_get_a_clean_503(bot: Assistant) -> None:
    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=1000, server_max_pending=6))
    key = bot.memory.keys.create("crowd").secret
    questions = [QUESTION, "What does error E17 mean?", "How many days of paid holiday do staff get?"]
    results: dict[int, tuple[int, str]] = {}

    def client(n: int) -> None:
        body = {"model": "handbook", "stream": True, "messages": [{"role": "user", "content": questions[n % 3]}]}
        headers = {"Authorization": f"Bearer {key}", "X-Session-Id": f"crowd-{n}"}
        with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, json=body, timeout=300) as response:
            if response.status_code != 200:
                response.read()
                results[n] = (response.status_code, response.headers.get("retry-after", ""))
                return
            text = ""
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    event = json.loads(line[6:])
                    assert "error" not in event, event
                    text += event["choices"][0]["delta"].get("content") or ""
            results[n] = (200, text)

    try:
        clients = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for c in clients:
            c.start()
        for c in clients:
            c.join(timeout=600)
        assert len(results) == 16, "a client hung"
        answered = [n for n, (status, _) in results.items() if status == 200]
        refused = [n for n, (status, _) in results.items() if status != 200]
        assert len(answered) >= 6 and all(results[n] == (503, "5") for n in refused), results
        # Each stream carried exactly its own stored answer: no token of another answer in it.
        for n in answered:
            stored = bot.history("crowd", f"crowd-{n}")
            assert stored[-1].content == results[n][1] and stored[-2].content == questions[n % 3]
        assert httpx.get(f"{url}/health").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for_job(served: Served, job_id: str, key: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 300
    while True:
        job = httpx.get(f"{served.url}/v1/jobs/{job_id}", headers=served.headers(key)).json()["job"]
        if job["status"] in ("done", "failed"):
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def test_a_private_collection_upload_job_and_isolation(served: Served) -> None:
    url = served.url
    created = httpx.post(
        f"{url}/v1/collections", headers=served.headers(), json={"name": "alice-notes", "private": True}
    )
    assert created.status_code == 201 and created.json()["owner"] == "alice"
    files = [
        (
            "files",
            (
                "boiler.md",
                b"# Boiler\n\nThe boiler in room B12 is serviced every March by Termo Ltd.\n",
                "text/markdown",
            ),
        ),
        ("files", ("empty.txt", b"", "text/plain")),
    ]
    upload = httpx.post(f"{url}/v1/collections/alice-notes/files", headers=served.headers(), files=files)
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["job"]["id"]
    job = wait_for_job(served, job_id, served.alice)
    assert job["status"] == "done" and job["files_done"] == 2
    reports = {r["file"]: r for r in job["reports"]}
    assert reports["boiler.md"]["files"]["new"] == 1  # type: ignore[index]
    assert reports["empty.txt"]["files"]["failed"], reports  # type: ignore[index]  # reported; the others indexed

    answer = httpx.post(
        f"{url}/v1/chat/completions",
        headers=served.headers(),
        json={
            "model": "alice-notes",
            "messages": [{"role": "user", "content": "Who services the boiler in room B12?"}],
        },
        timeout=120,
    ).json()
    assert "Termo" in answer["choices"][0]["message"]["content"]
    assert answer["assistant"]["sources"][0]["file"] == "boiler.md"

    # Bob sees none of it: not the collection, not the job, not as a model.
    bob = served.headers(served.bob)
    assert "alice-notes" not in [m["id"] for m in httpx.get(f"{url}/v1/models", headers=bob).json()["data"]]
    assert httpx.get(f"{url}/v1/collections/alice-notes", headers=bob).status_code == 404
    assert httpx.get(f"{url}/v1/jobs/{job_id}", headers=bob).status_code == 404
    assert httpx.post(f"{url}/v1/collections/alice-notes/files", headers=bob, files=files[:1]).status_code == 404
    asked = httpx.post(
        f"{url}/v1/chat/completions",
        headers=bob,
        json={"model": "alice-notes", "messages": [{"role": "user", "content": "Who services the boiler?"}]},
    )
    assert asked.status_code == 404 and asked.json()["error"]["code"] == "model_not_found"
    assert httpx.delete(f"{url}/v1/collections/alice-notes", headers=bob).status_code == 404
    # A shared collection she did not create cannot be changed with her key; her own private one can.
    assert httpx.delete(f"{url}/v1/collections/handbook", headers=served.headers()).status_code == 403
    assert httpx.delete(f"{url}/v1/collections/alice-notes", headers=served.headers()).status_code == 200
    assert "alice-notes" not in [shown_name(n) for n in served.bot.collections()]


def test_keys_from_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli
    from assistant.factory import build_memory
    from assistant.settings import Settings

    state = ["--data-dir", str(tmp_path)]
    created = CliRunner().invoke(cli, [*state, "keys", "create", "--user", "erin", "--name", "wiki bot", "--json"])
    assert created.exit_code == 0, created.output
    issued = json.loads(created.stdout)
    memory = build_memory(Settings(data_dir=tmp_path))
    assert memory.keys.verify(issued["key"]).user_id == "erin"  # type: ignore[union-attr]
    # Only a hash is stored: the key itself is nowhere in the database file.
    assert issued["key"].encode() not in (tmp_path / "assistant.db").read_bytes()
    listed = CliRunner().invoke(cli, [*state, "keys", "list", "--user", "erin"])
    assert "wiki bot" in listed.output and "live" in listed.output and issued["key"] not in listed.output
    revoked = CliRunner().invoke(cli, [*state, "keys", "revoke", str(issued["id"])])
    assert revoked.exit_code == 0 and memory.keys.verify(issued["key"]) is None
    again = CliRunner().invoke(cli, [*state, "keys", "revoke", str(issued["id"])])
    assert again.exit_code == 2 and "no live key" in again.output
    missing = CliRunner().invoke(cli, [*state, "keys", "create", "--user", " "])
    assert missing.exit_code == 2 and "user" in missing.output
