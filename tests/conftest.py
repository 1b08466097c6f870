"""Fixtures that start real services: PostgreSQL (initdb + pg_ctl), a Chroma server
(`chroma run`) and an OpenAI-compatible llama.cpp server, all on loopback in
temporary directories. Without the binaries a test is skipped locally; under CI
(CI=true) a missing service fails the run instead, so nothing is silently skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, Settings
from assistant.llamacpp import bundled_gguf_path
from tests.services import free_port, stop, temporary_postgres, wait_for_port
from tests.services import llama_server as start_llama_server

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK = ROOT / "data" / "handbook"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"required test service unavailable in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def _no_state_of_this_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test (nor a command it starts) reads or writes this machine's data: the user data directory
    and the default data dir point into a temporary folder. Tests of the lookup itself unset them."""
    root = tmp_path_factory.mktemp("machine-data")
    saved = {name: os.environ.get(name) for name in ("XDG_DATA_HOME", "ASSISTANT_DATA_DIR")}
    os.environ["XDG_DATA_HOME"] = str(root / "xdg")
    os.environ["ASSISTANT_DATA_DIR"] = str(root / "default")
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def shared_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistant-state")


@pytest.fixture(scope="session")
def bot(shared_state: Path) -> Assistant:
    """One assistant over the sample handbook, with the real model and embedder."""
    assistant = Assistant.from_settings(Settings(data_dir=shared_state))
    report = assistant.ingest(HANDBOOK, collection="handbook")
    assert report.files_failed == [], report.files_failed
    return assistant


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if url := os.environ.get("ASSISTANT_TEST_POSTGRES_URL"):
        yield url
        return
    if not (PG_BIN / "initdb").exists():
        unavailable(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql-15)")
    with temporary_postgres(PG_BIN, free_port()) as url:
        yield url


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        unavailable("the chroma CLI is not installed in this environment")
    path = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(chroma), "run", "--path", str(path / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, 60, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def llama_server_available() -> None:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        unavailable("llama-cpp-python[server] is not installed")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible endpoint: llama_cpp.server serving the bundled GGUF as "large"."""
    llama_server_available()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with start_llama_server(bundled_gguf_path(), log) as (url, _process):
        yield url
