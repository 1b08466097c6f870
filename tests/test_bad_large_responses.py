"""A large model that answers HTTP 200 with a body that is not a chat completion.

An HTML page from a proxy, an empty body, truncated JSON, or JSON without `choices`
is the endpoint's failure: the turn is answered locally, marked, with the reason and
an audit row, whether asked from Python (plain or streamed), over HTTP (plain or
streamed) or from the CLI. No real server can be made to send these bodies, so a
FAKE endpoint, named as such, sends them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from assistant import Assistant, Settings
from tests.conftest import HANDBOOK
from tests.test_server import start

pytestmark = pytest.mark.llm

INSIDE = "What is the extension for building security?"  # faq.txt: 5555
OUTSIDE = "Who won the football World Cup in 2022?"
UNREADABLE = "the response is not a chat completion"
BODIES = {
    "html": (b"<!doctype html><html><body><h1>Sign in to the gateway</h1></body></html>", "text/html"),
    "empty": (b"", "application/json"),
    "malformed": (b'{"id": "x", "choices": [{"message": {"content": "hal', "application/json"),
    "no-choices": (b'{"hello": "world"}', "application/json"),
}


class BadBodyEndpoint:
    """FAKE, named as such: an "OpenAI-compatible" endpoint that answers 200 with `body`."""

    def __init__(self) -> None:
        self.body, self.content_type = b"", "application/json"
        self.calls = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                endpoint.calls += 1
                self.send_response(200)
                self.send_header("content-type", endpoint.content_type)
                self.send_header("content-length", str(len(endpoint.body)))
                self.end_headers()
                self.wfile.write(endpoint.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def send(self, shape: str) -> None:
        self.body, self.content_type = BODIES[shape]


@dataclass
class World:
    endpoint: BadBodyEndpoint
    bot: Assistant
    settings: Settings
    url: str
    key: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    endpoint = BadBodyEndpoint()
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("bad-large") / "state",
        fallback_base_url=endpoint.url,
        fallback_model="large",
        fallback_deadline_s=20,
        fallback_backoff_s=0.1,
    )
    bot = Assistant.from_settings(settings)
    bot.ingest(HANDBOOK, collection="handbook")
    url, server, thread = start(bot, _server_options())
    yield World(endpoint, bot, settings, url, bot.memory.keys.create("alice").secret)
    server.should_exit = True
    thread.join(timeout=10)
    endpoint.server.shutdown()


def _server_options() -> Any:
    from assistant.settings import ServerSettings

    return ServerSettings(server_requests_per_minute=1000)


def _one_failed_call(bot: Assistant, user: str, session: str) -> None:
    [call] = bot.escalations(user, session)
    assert call.status == "failed" and call.attempts == 1  # not retried: the same body would come back
    assert call.error and UNREADABLE in call.error and call.message_id is not None


@pytest.mark.parametrize("shape", list(BODIES))
def test_python_plain_and_streamed_turns_are_answered_locally(world: World, shape: str) -> None:
    world.endpoint.send(shape)
    reply = world.bot.ask(INSIDE, user_id="py", session_id=f"{shape}-plain", collection="handbook", route="large")
    assert reply.route == "local" and reply.low_confidence and "5555" in reply.answer
    assert UNREADABLE in reply.reason and "answered locally" in reply.reason
    assert "the large model's response could not be read" in reply.answer
    _one_failed_call(world.bot, "py", f"{shape}-plain")

    # The router escalates this one by itself; the stream still ends in a stored local turn.
    chunks = list(world.bot.stream(OUTSIDE, user_id="py", session_id=f"{shape}-stream", collection="handbook"))
    final = chunks[-1].reply
    assert final is not None and final.route in ("local", "abstain")
    assert "the large model failed" in final.reason and UNREADABLE in final.reason
    assert world.bot.history("py", f"{shape}-stream")[-1].content == final.answer
    _one_failed_call(world.bot, "py", f"{shape}-stream")


@pytest.mark.parametrize("shape", list(BODIES))
def test_http_plain_and_streamed_requests_are_answered_locally(world: World, shape: str) -> None:
    world.endpoint.send(shape)
    headers = {"Authorization": f"Bearer {world.key}"}
    body = {"model": "handbook", "messages": [{"role": "user", "content": INSIDE}], "route": "large"}
    with httpx.Client(base_url=world.url, headers=headers, timeout=300) as client:
        plain = client.post("/v1/chat/completions", json=body, headers={"X-Session-Id": f"{shape}-plain"})
        assert plain.status_code == 200, plain.text
        extension = plain.json()["assistant"]
        assert extension["route"] == "local" and UNREADABLE in extension["reason"]
        assert "5555" in plain.json()["choices"][0]["message"]["content"]

        with client.stream(
            "POST", "/v1/chat/completions", json={**body, "stream": True}, headers={"X-Session-Id": f"{shape}-s"}
        ) as streamed:
            assert streamed.status_code == 200
            events = [line.removeprefix("data: ") for line in streamed.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["assistant"]["route"] == "local" and UNREADABLE in chunks[-1]["assistant"]["reason"]
    _one_failed_call(world.bot, "alice", f"{shape}-plain")
    _one_failed_call(world.bot, "alice", f"{shape}-s")


@pytest.mark.parametrize("shape", ["html", "no-choices"])
def test_the_cli_answers_locally_without_a_traceback(world: World, shape: str) -> None:
    world.endpoint.send(shape)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "assistant.cli", "--data-dir", str(world.settings.data_dir)),
            *("ask", INSIDE, "-c", "handbook", "--route", "large", "--user", "cli", "--session", shape),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"ASSISTANT_FALLBACK_BASE_URL": world.endpoint.url, "ASSISTANT_FALLBACK_MODEL": "large", **_env()},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "5555" in done.stdout
    assert "route: local" in done.stdout and UNREADABLE in done.stdout
    _one_failed_call(world.bot, "cli", shape)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}


def test_only_errors_raised_inside_libraries_count_as_the_response_s_fault() -> None:
    """Below the call, only library code may have raised it; an error raised in a chat model's own
    code is a bug and surfaces (tests/test_escalation.py shows it end to end)."""
    from chains.escalate import transport_failure

    def bug_of_ours() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError) as parsed:
        json.loads("<html>")
    failure = transport_failure(parsed.value)
    assert failure is not None and failure[0] is False and UNREADABLE in failure[1]
    with pytest.raises(ValueError) as bug:
        bug_of_ours()
    assert transport_failure(bug.value) is None
