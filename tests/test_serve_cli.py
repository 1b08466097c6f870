"""`assistant serve` as an ops engineer runs it: the real console script in a subprocess
says where it listens, writes one access line per request with the id the response's
X-Request-Id header carries, and keeps the API docs behind the key like the rest."""

from __future__ import annotations

import json
import os
import re
import shutil
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


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = tmp_path_factory.mktemp("serve-cli")
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(state)}
    created = subprocess.run(
        [ASSISTANT, "keys", "create", "--user", "ops", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert created.returncode == 0, created.stderr
    port = free_port()
    log = state / "serve.log"
    with log.open("wb") as err:
        process = subprocess.Popen([ASSISTANT, "serve", "--port", str(port)], env=env, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 180
        while "listening on" not in log.read_text(encoding="utf-8"):
            assert process.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.1)
        yield Running(f"http://127.0.0.1:{port}", json.loads(created.stdout)["key"], log)
    finally:
        stop(process)


def test_it_says_where_it_listens(running: Running) -> None:
    listening = [line for line in running.lines() if "listening on" in line]
    assert len(listening) == 1
    assert f"listening on {running.url} (" in listening[0] and "/docs" in listening[0]


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


def test_the_api_docs_need_a_key(running: Running) -> None:
    for path in ("/docs", "/openapi.json"):
        anonymous = httpx.get(f"{running.url}{path}")
        assert anonymous.status_code == 401, path
        assert anonymous.json()["error"]["code"] == "invalid_api_key"
    auth = {"Authorization": f"Bearer {running.key}"}
    schema = httpx.get(f"{running.url}/openapi.json", headers=auth)
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]
    assert "/docs" not in schema.json()["paths"]
    page = httpx.get(f"{running.url}/docs", headers=auth)
    assert page.status_code == 200 and "/openapi.json" in page.text and "swagger" in page.text.lower()
    # The documented exceptions stay open: liveness, readiness and the web page.
    for path in ("/health", "/ready", "/"):
        assert httpx.get(f"{running.url}{path}").status_code == 200, path


def test_keys_list_has_a_header_and_json(running: Running) -> None:
    env = {**os.environ, "ASSISTANT_DATA_DIR": str(running.log.parent)}
    table = subprocess.run([ASSISTANT, "keys", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "USER", "ROLE", "PREFIX", "NAME", "STATE", "CREATED"]
    assert len(rows) == 1 and rows[0].split()[1:3] == ["ops", "user"] and "live" in rows[0]
    assert running.key not in table.stdout
    listed = subprocess.run([ASSISTANT, "keys", "list", "--json"], env=env, capture_output=True, text=True, timeout=120)
    [key] = json.loads(listed.stdout)
    assert key["user"] == "ops" and key["state"] == "live" and running.key.startswith(key["prefix"])
    none = subprocess.run(
        [ASSISTANT, "keys", "list", "--user", "nobody"], env=env, capture_output=True, text=True, timeout=120
    )
    assert none.returncode == 0 and none.stdout == "" and "no keys" in none.stderr
