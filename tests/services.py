"""Real services started on loopback for tests and benchmarks (importable without pytest)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["free_port", "llama_server", "temporary_postgres", "wait_for_port"]


@contextmanager
def temporary_postgres(pg_bin: Path, port: int) -> Iterator[str]:
    """A PostgreSQL server from Debian's binaries in a temporary directory; yields its URL.

    initdb refuses to run as root, so as root the server runs as the `postgres` user.
    """
    workdir = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
    data, log = workdir / "data", workdir / "server.log"
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_postgres, str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_postgres,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-o",
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(workdir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def llama_server(
    model: Path,
    log: Path,
    *,
    alias: str = "large",
    port: int | None = None,
    api_key: str | None = None,
    logits_all: bool = True,
    interrupt: bool = False,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m llama_cpp.server` serving a GGUF on loopback; yields (base URL …/v1, process).

    `interrupt=False`: a stream runs to its end when another request arrives (the
    server's default cuts it short, which breaks several clients sharing it)."""
    port = port or free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model), "--model_alias", alias,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "4096", "--n_threads", "2", "--logits_all", str(logits_all).lower(),
        "--interrupt_requests", str(interrupt).lower(),
    ]  # fmt: skip
    if api_key:
        command += ["--api_key", api_key]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, 120, log)
        yield f"http://127.0.0.1:{port}/v1", process
    finally:
        stop(process)
