"""Two `assistant serve` processes on loopback against one PostgreSQL, one Chroma
server and one model server (`python -m llama_cpp.server` serving the bundled GGUF as
the small model): they keep no state of their own and load no model, so one session's turns alternate between
them, a file uploaded through one is answered from through the other, a key created
anywhere works everywhere, and a key revoked on one is refused by both."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from memory.engine import create_memory_engine
from memory.store import SQLMemory
from tests.services import free_port, stop, wait_for_port

pytestmark = [pytest.mark.llm, pytest.mark.postgres]


@pytest.fixture
def database(postgres_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of its own on the shared PostgreSQL server."""
    name = f"replicas_{tmp_path.name.lower().replace('-', '_')[-40:]}"
    admin = create_memory_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def replicas(database: str, chroma_server: str, llama_server: str, tmp_path: Path) -> Iterator[list[str]]:
    urls, processes = [], []
    try:
        for n in range(2):
            port = free_port()
            env = {
                **os.environ,
                "ASSISTANT_DATABASE_URL": database,
                "ASSISTANT_CHROMA_URL": chroma_server,
                "ASSISTANT_LLM_BASE_URL": llama_server,
                "ASSISTANT_LLM_MODEL": "large",  # the alias the shared server gives the bundled GGUF
                "ASSISTANT_DATA_DIR": str(tmp_path / f"replica-{n}"),  # nothing shared is kept here
                "ASSISTANT_SERVER_REQUESTS_PER_MINUTE": "1000",
            }
            log = tmp_path / f"replica-{n}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            wait_for_port(port, process, 120, log)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for process in processes:
            stop(process)


def ask(url: str, key: str, session: str, question: str) -> dict:  # type: ignore[type-arg]
    response = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", "X-Session-Id": session},
        json={"model": "plant", "messages": [{"role": "user", "content": question}]},
        timeout=180,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_two_replicas_serve_one_session_and_one_collection(replicas: list[str], database: str) -> None:
    a, b = replicas
    memory = SQLMemory(create_memory_engine(database))
    key = memory.keys.create("dana").secret
    auth = {"Authorization": f"Bearer {key}"}

    assert httpx.post(f"{a}/v1/collections", headers=auth, json={"name": "plant"}).status_code == 201
    doc = b"# Plant\n\nThe cooling pump P7 is replaced every 18 months.\n\nThe night shift starts at 22:00.\n"
    upload = httpx.post(f"{a}/v1/collections/plant/files", headers=auth, files=[("files", ("plant.md", doc))])
    job_id = upload.json()["job"]["id"]
    deadline = time.monotonic() + 300
    while (job := httpx.get(f"{b}/v1/jobs/{job_id}", headers=auth).json()["job"])["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)  # polled through the other replica
    assert job["status"] == "done", job

    questions = [
        (b, "How often is the cooling pump P7 replaced?", "18 months"),
        (a, "When does the night shift start?", "22:00"),
        (b, "How often is the cooling pump P7 replaced?", "18 months"),
    ]
    for url, question, expected in questions:
        reply = ask(url, key, "shift-log", question)
        assert expected in reply["choices"][0]["message"]["content"], reply
        assert reply["assistant"]["sources"][0]["file"] == "plant.md"
        assert reply["assistant"]["model"] == "large"  # answered by the shared model server
    for url in (a, b):
        messages = httpx.get(f"{url}/v1/sessions/shift-log", headers=auth).json()["messages"]
        assert [m["content"] for m in messages[::2]] == [q for _, q, _ in questions]
        assert [m["seq"] for m in messages] == list(range(1, 7))

    memory.keys.revoke(memory.keys.list("dana")[0].id)
    assert [httpx.get(f"{url}/v1/models", headers=auth).status_code for url in (a, b)] == [401, 401]
