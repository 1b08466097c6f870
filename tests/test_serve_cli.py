"""`assistant serve` as an ops engineer runs it: the real console script in a subprocess
says where it listens, writes one access line per request with the id the response's
X-Request-Id header carries (and no credential sent in a URL), keeps the OpenAPI schema
behind the key like the rest, suggests the collection a misspelt model meant, and stops
cleanly on Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.services import free_port, stop

ASSISTANT = shutil.which("assistant", path=str(Path(sys.executable).parent)) or "assistant"
# nginx's combined format, then our response time and request id.
ACCESS = re.compile(
    r'^(?P<client>\S+) - (?P<user>\S+) \[(?P<time>[^]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" rt=(?P<ms>\d+)ms rid=(?P<rid>\S+)$'
)


@dataclass
class Running:
    url: str
    key: str
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines()

    def access_lines(self, request_id: str) -> list[re.Match[str]]:
        """The access lines of one request, waiting a moment for the last to be written."""
        deadline = time.monotonic() + 5
        while True:
            found = [m for line in self.lines() if (m := ACCESS.match(line)) and m["rid"] == request_id]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def create_key(state: Path, user: str) -> str:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(state)}
    created = subprocess.run(
        [ASSISTANT, "keys", "create", "--user", user, "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["key"])


def start_serving(state: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`assistant serve` over `state`, once it says it listens: the process, its URL and its log."""
    port = free_port()
    log = state / "serve.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [ASSISTANT, "serve", "--port", str(port)],
            env={**os.environ, "ASSISTANT_DATA_DIR": str(state)},
            stdout=err,
            stderr=err,
        )
    deadline = time.monotonic() + 180
    while "listening on" not in log.read_text(encoding="utf-8"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(log.read_text(encoding="utf-8"))
        time.sleep(0.1)
    return process, f"http://127.0.0.1:{port}", log


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("serve-cli")
    key = create_key(state, "ops")
    process, url, log = start_serving(state)
    try:
        yield Running(url, key, log)
    finally:
        stop(process)


def test_it_says_where_it_listens(running: Running) -> None:
    listening = [line for line in running.lines() if "listening on" in line]
    assert len(listening) == 1
    assert f"listening on {running.url} (" in listening[0] and "/openapi.json" in listening[0]
    assert "/docs" not in listening[0]


def test_one_access_line_per_request_with_the_request_id_of_the_response(running: Running) -> None:
    health = httpx.get(f"{running.url}/health")
    rid = health.headers["x-request-id"]
    [line] = running.access_lines(rid)
    assert (line["method"], line["path"], line["status"], line["user"]) == ("GET", "/health", "200", "-")
    assert line["bytes"] == str(len(health.content)) and line["agent"].startswith("python-httpx/")
    assert int(line["ms"]) >= 0 and re.fullmatch(r"\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}", line["time"])

    # A caller's own id is kept, and the key's user is named.
    models = httpx.get(
        f"{running.url}/v1/models?x=1",
        headers={"Authorization": f"Bearer {running.key}", "X-Request-Id": "ops-check-1"},
    )
    assert models.status_code == 200 and models.headers["x-request-id"] == "ops-check-1"
    [line] = running.access_lines("ops-check-1")
    assert (line["user"], line["path"], line["status"]) == ("ops", "/v1/models?x=1", "200")

    # Errors are logged too, with the id their body carries; an id that could forge a log line is replaced.
    refused = httpx.get(f"{running.url}/v1/models", headers={"X-Request-Id": 'x" 200 rid=forged ' + "y" * 100})
    rid = refused.headers["x-request-id"]
    assert refused.status_code == 401 and refused.json()["error"]["request_id"] == rid
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    [line] = running.access_lines(rid)
    assert line["status"] == "401"
    assert not any("forged" in line for line in running.lines())

    # Nothing else is printed per request: no second access log (uvicorn's) beside ours.
    assert not [line for line in running.lines() if '"GET /health' in line and "rid=" not in line]


def test_the_openapi_schema_needs_a_key_and_there_is_no_docs_page(running: Running) -> None:
    anonymous = httpx.get(f"{running.url}/openapi.json")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    auth = {"Authorization": f"Bearer {running.key}"}
    schema = httpx.get(f"{running.url}/openapi.json", headers=auth)
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
    assert "/docs" not in schema.json()["paths"]
    # Swagger UI would load its scripts from a CDN: no such page, with a key or without.
    for headers in ({}, auth):
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            missing = httpx.get(f"{running.url}{path}", headers=headers)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found", path
    # The documented exceptions stay open: liveness, readiness and the web page.
    for path in ("/health", "/ready", "/"):
        assert httpx.get(f"{running.url}{path}").status_code == 200, path


def test_keys_list_has_a_header_and_json(running: Running) -> None:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(running.log.parent)}
    table = subprocess.run(
        [ASSISTANT, "keys", "list", "--user", "ops"], env=env, capture_output=True, text=True, timeout=120
    )
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "USER", "ROLE", "PREFIX", "NAME", "STATE", "CREATED"]
    assert len(rows) == 1 and rows[0].split()[1:3] == ["ops", "user"] and "live" in rows[0]
    assert running.key not in table.stdout
    listed = subprocess.run(
        [ASSISTANT, "keys", "list", "--user", "ops", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    [key] = json.loads(listed.stdout)
    assert key["user"] == "ops" and key["state"] == "live" and running.key.startswith(key["prefix"])
    none = subprocess.run(
        [ASSISTANT, "keys", "list", "--user", "nobody"], env=env, capture_output=True, text=True, timeout=120
    )
    assert none.returncode == 0 and none.stdout == "" and "no keys" in none.stderr


def test_credentials_in_the_query_string_are_masked_in_the_access_line(running: Running) -> None:
    secret = "sk-do-not-log-me"
    query = f"api_key={secret}&x=1&Access%5FToken={secret}&client_secret={secret}&password={secret}&page=2"
    refused = httpx.get(f"{running.url}/v1/models?{query}")
    assert refused.status_code == 401  # a key in the URL is not accepted, only in the header
    [line] = running.access_lines(refused.headers["x-request-id"])
    assert line["path"] == "/v1/models?api_key=***&x=1&Access%5FToken=***&client_secret=***&password=***&page=2"
    assert not any(secret in line for line in running.lines())


def test_a_misspelt_model_gets_a_suggestion_among_the_collections_the_key_sees(running: Running) -> None:
    eve = create_key(running.log.parent, "eve")

    def create(key: str, name: str, private: bool) -> None:
        made = httpx.post(
            f"{running.url}/v1/collections",
            headers={"Authorization": f"Bearer {key}"},
            json={"name": name, "private": private},
            timeout=120,
        )
        assert made.status_code == 201, made.text

    def ask(key: str, model: str) -> httpx.Response:
        return httpx.post(
            f"{running.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "How do I reset my password?"}]},
            timeout=120,
        )

    create(running.key, "support", private=False)
    create(eve, "supports", private=True)  # close to "suport" too, but eve's alone
    mine = ask(running.key, "suport")
    error = mine.json()["error"]
    assert mine.status_code == 404 and (error["code"], error["param"]) == ("model_not_found", "model")
    assert "did you mean 'support'?" in error["message"] and "supports" not in error["message"]
    assert "GET /v1/models" in error["message"]
    assert "did you mean 'support' or 'supports'?" in ask(eve, "suport").json()["error"]["message"]
    # Nothing close: no suggestion at all.
    far = ask(running.key, "billing").json()["error"]["message"]
    assert "did you mean" not in far and "support" not in far


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly_with_exit_code_0(tmp_path: Path, sent: signal.Signals) -> None:
    process, url, log = start_serving(tmp_path)
    try:
        assert httpx.get(f"{url}/health").status_code == 200
        process.send_signal(sent)
        code = process.wait(timeout=60)
    finally:
        stop(process)
    printed = log.read_text(encoding="utf-8")
    assert code == 0, printed
    assert "Aborted!" not in printed and "Traceback" not in printed
    last = printed.splitlines()[-1]
    assert last.endswith("INFO assistant.server: stopped"), printed
    assert f"stopping on {sent.name}" in printed
