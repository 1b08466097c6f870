"""Serving benchmark: streaming over HTTP against the same questions asked in-process,
and requests per second with one and two app replicas when the model is served by
`python -m llama_cpp.server`.

    python benchmarks/bench_server.py [--questions 8] [--skip-replicas]

1. In-process: `Assistant.stream` on the sample handbook, one question at a time: time to
   first token (TTFT) and tokens per second of each answer. This is the baseline.
2. HTTP: `assistant serve` (uvicorn, in this process) with 1, 4 and 16 concurrent streaming
   clients, each asking the same questions: TTFT p50/p95, tokens per second of one stream
   and of all streams together, and how many got 503 (the admission limit).
3. Replicas: a llama_cpp.server serving the bundled GGUF, and 1 then 2 `assistant serve`
   processes on one SQLite database and one Chroma server; 8 clients ask for a fixed time:
   requests per second. Two set-ups: the small model served by it (ASSISTANT_LLM_BASE_URL,
   no model in the replicas), and the small model in each replica with every question sent
   to the served model as the large one (route="large").

Ratios are printed against the in-process baseline measured in the same run: these
machines are noisy, absolute times are not comparable between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from assistant import Assistant, Settings  # noqa: E402
from assistant.settings import ServerSettings  # noqa: E402
from tests.services import free_port, llama_server, stop, wait_for_port  # noqa: E402
from tests.test_server import start  # noqa: E402

QUESTIONS = [
    "How long is the warranty of the X200?",
    "What does error E17 mean?",
    "How many days of paid holiday do staff get?",
    "What is the support hotline number?",
    "How often should the X200 filter be replaced?",
    "What is the daily meal allowance on business trips?",
    "Within how many days can monthly-plan customers get a full refund?",
    "Where is the first-aid kit?",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def in_process(bot: Assistant, questions: list[str]) -> tuple[list[float], list[float]]:
    ttft, rates = [], []
    for n, question in enumerate(questions):
        started = time.perf_counter()
        first = None
        reply = None
        for chunk in bot.stream(
            question, user_id="bench", session_id=f"inproc-{n}-{time.time()}", collection="handbook"
        ):
            if chunk.text and first is None:
                first = time.perf_counter()
            if chunk.reply is not None:
                reply = chunk.reply
        done = time.perf_counter()
        assert reply is not None and first is not None
        ttft.append((first - started) * 1000)
        rates.append(reply.usage.get("completion_tokens", 0) / max(done - first, 1e-6))
    return ttft, rates


def stream_once(url: str, key: str, question: str, session: str) -> tuple[int, float, float, int, float]:
    """(status, ttft ms, seconds after the first token, completion tokens, total seconds)."""
    body = {"model": "handbook", "stream": True, "messages": [{"role": "user", "content": question}]}
    headers = {"Authorization": f"Bearer {key}", "X-Session-Id": session}
    started = time.perf_counter()
    first = None
    tokens = 0
    with httpx.stream("POST", f"{url}/v1/chat/completions", headers=headers, json=body, timeout=900) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, 0.0, 0.0, 0, time.perf_counter() - started
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event["choices"] and event["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter()
            if event.get("usage"):
                tokens = event["usage"]["completion_tokens"]
    done = time.perf_counter()
    first = first or done
    return 200, (first - started) * 1000, done - first, tokens, done - started


def http_streams(url: str, key: str, questions: list[str], clients: int) -> dict[str, float]:
    results: list[tuple[int, float, float, int, float]] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for n, question in enumerate(questions):
            result = stream_once(url, key, question, f"http-{clients}-{c}-{n}-{time.time()}")
            with lock:
                results.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ok = [r for r in results if r[0] == 200]
    ttft = [r[1] for r in ok]
    return {
        "ttft p50 ms": round(pct(ttft, 0.5)),
        "ttft p95 ms": round(pct(ttft, 0.95)),
        "tok/s per stream": round(statistics.fmean(r[3] / max(r[2], 1e-6) for r in ok), 1) if ok else 0.0,
        "tok/s all": round(sum(r[3] for r in ok) / wall, 1),
        "refused 503": sum(r[0] == 503 for r in results),
        "answered": len(ok),
    }


def replicas_rps(state: Path, count: int, model_url: str, seconds: float, *, served_small: bool) -> float:
    chroma_port = free_port()
    chroma = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "chroma"),
            "run",
            "--path",
            str(state / "chroma-server"),
            "--port",
            str(chroma_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes = [chroma]
    try:
        wait_for_port(chroma_port, chroma, 60, state / "chroma.log")
        env = {
            **os.environ,
            "ASSISTANT_DATABASE_URL": f"sqlite:///{state / 'replicas.db'}",
            "ASSISTANT_CHROMA_URL": f"http://127.0.0.1:{chroma_port}",
            **(
                {"ASSISTANT_LLM_BASE_URL": model_url, "ASSISTANT_LLM_MODEL": "large"}
                if served_small
                else {"ASSISTANT_FALLBACK_BASE_URL": model_url, "ASSISTANT_FALLBACK_MODEL": "large"}
            ),
            "ASSISTANT_SERVER_REQUESTS_PER_MINUTE": "0",
            "ASSISTANT_SERVER_MAX_PENDING": "64",
        }
        setup = Assistant.from_settings(
            Settings(
                data_dir=state / "setup",
                database_url=env["ASSISTANT_DATABASE_URL"],
                chroma_url=env["ASSISTANT_CHROMA_URL"],
            )
        )
        setup.ingest(ROOT / "data" / "handbook", "handbook")
        key = setup.memory.keys.create("bench").secret
        urls = []
        for n in range(count):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
                env={**env, "ASSISTANT_DATA_DIR": str(state / f"replica-{n}")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            wait_for_port(port, process, 120, state / "replica.log")
            urls.append(f"http://127.0.0.1:{port}")
        done = 0
        lock = threading.Lock()
        deadline = time.monotonic() + seconds

        def client(c: int) -> None:
            nonlocal done
            n = 0
            while time.monotonic() < deadline:
                url = urls[(c + n) % len(urls)]
                body = {
                    "model": "handbook",
                    "route": "local" if served_small else "large",
                    "messages": [{"role": "user", "content": QUESTIONS[n % len(QUESTIONS)]}],
                }
                response = httpx.post(
                    f"{url}/v1/chat/completions",
                    headers={"Authorization": f"Bearer {key}", "X-Session-Id": f"rps-{c}-{n}"},
                    json=body,
                    timeout=600,
                )
                n += 1
                # A local answer with no generated token is a failure too (a cut-short stream).
                reply = response.json() if response.status_code == 200 else None
                if reply and (reply["assistant"]["route"] != "local" or reply["usage"]["completion_tokens"]):
                    with lock:
                        done += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return done / (time.perf_counter() - started)
    finally:
        for process in processes:
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0, help="Duration of each replica measurement.")
    parser.add_argument("--skip-replicas", action="store_true")
    parser.add_argument("--only-replicas", action="store_true", help="Skip the in-process and HTTP streaming part.")
    args = parser.parse_args()
    questions = QUESTIONS[: args.questions]
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))

    if not args.only_replicas:
        streaming(questions, work)
    if not args.skip_replicas:
        replicas(work, args.seconds)


def streaming(questions: list[str], work: Path) -> None:
    bot = Assistant.from_settings(Settings(data_dir=work / "state"))
    bot.ingest(ROOT / "data" / "handbook", "handbook")
    bot.ask(questions[0], user_id="bench", session_id="warm", collection="handbook")
    ttft, rates = in_process(bot, questions)
    base = {
        "ttft p50 ms": round(pct(ttft, 0.5)),
        "ttft p95 ms": round(pct(ttft, 0.95)),
        "tok/s": round(statistics.fmean(rates), 1),
    }
    print(f"in-process        {base}", flush=True)

    url, server, thread = start(bot, ServerSettings(server_requests_per_minute=0, server_max_pending=16))
    key = bot.memory.keys.create("bench").secret
    rows = {}
    for clients in (1, 4, 16):
        rows[clients] = http_streams(url, key, questions[: max(2, len(questions) // clients)], clients)
        row = rows[clients]
        print(
            f"HTTP {clients:2d} clients   {row}  TTFT p50 ×{row['ttft p50 ms'] / base['ttft p50 ms']:.2f} "
            f"of in-process, tok/s per stream ×{row['tok/s per stream'] / base['tok/s']:.2f}",
            flush=True,
        )
    server.should_exit = True
    thread.join(timeout=10)


def replicas(work: Path, seconds: float) -> None:
    from assistant.llamacpp import bundled_gguf_path

    with llama_server(bundled_gguf_path(), work / "llama-server.log") as (model_url, _):
        for served_small, label in ((True, "small model served"), (False, "route=large, served")):
            one = replicas_rps(work / f"one-{served_small}", 1, model_url, seconds, served_small=served_small)
            two = replicas_rps(work / f"two-{served_small}", 2, model_url, seconds, served_small=served_small)
            print(
                f"{label} by llama_cpp.server: 1 replica {one:.2f} req/s, "
                f"2 replicas {two:.2f} req/s (×{two / one:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
