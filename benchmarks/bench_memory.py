"""Conversation memory: history assembly as a session grows, and concurrent writers.

1. Assembly. The history part of a prompt is assembled (window of recent messages,
   rolling summary, the user's facts, the turns fitted into the token budget) for
   sessions of 10, 100, 1,000 and 10,000 messages. Printed: the median time per
   size and its ratio to the 10-message session (flat is 1.0).
2. Writes. 8 processes write 250 turns (500 messages) each, to one SQLite file and
   to PostgreSQL: turns per second, all writers together, and checks of the rows.

Run by hand: .venv/bin/python benchmarks/bench_memory.py [--postgres-url URL]
Without --postgres-url a temporary server is started from /usr/lib/postgresql/15/bin.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.llamacpp import ChatLlamaCpp, bundled_gguf_path  # noqa: E402
from assistant.settings import MemorySettings, PromptSettings  # noqa: E402
from chains.history import ConversationRecall  # noqa: E402
from chains.prompt import PromptBuilder  # noqa: E402
from memory import NewMessage, SQLMemory, StoredSummary, create_memory_engine  # noqa: E402
from tests.services import temporary_postgres  # noqa: E402
from tests.test_memory_concurrency import check_every_row_in_order, run_writers  # noqa: E402

SIZES = (10, 100, 1_000, 10_000)
REPEATS = 200


def fill(memory: SQLMemory, user: str, size: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    messages = [
        (
            NewMessage("assistant" if n % 2 else "user", f"message {n} about the X200 pump", token_count=9),
            start + timedelta(seconds=n),
        )
        for n in range(size)
    ]
    summary = [StoredSummary(size - 4, "The user asked about the X200.", 8, "bench", start)] if size > 4 else []
    memory.import_session(user, "s", "bench", messages, summary)
    memory.facts.add(user, "preference", "The user wants brief answers.")


def assembly(memory: SQLMemory, count_tokens: object) -> dict[int, float]:
    recall = ConversationRecall(
        memory,
        # facts are per user, not per session: their cost does not grow with it
        MemorySettings(history_turns=4, remember_facts=False, fact_min_similarity=0.3),
        summarizer=None,
        count_tokens=count_tokens,  # type: ignore[arg-type]
    )
    builder = PromptBuilder(
        count_tokens,  # type: ignore[arg-type]
        PromptSettings(history_token_budget=300, passage_token_budget=700),
        context_tokens=2048,
        answer_tokens=96,
    )
    timings = {}
    for size in SIZES:
        user = f"bench-{size}"
        fill(memory, user, size)
        samples = []
        for _ in range(REPEATS):
            began = time.perf_counter()
            turns, summary = recall.history(user, "s")
            builder.build("How often is the X200 serviced?", [], [], turns, summary=summary)
            samples.append(time.perf_counter() - began)
        timings[size] = statistics.median(samples)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to use")
    args = parser.parse_args()
    llm = ChatLlamaCpp(model_path=bundled_gguf_path())
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-memory-")))
        postgres = args.postgres_url or stack.enter_context(
            temporary_postgres(Path("/usr/lib/postgresql/15/bin"), 55432)
        )
        backends = {"sqlite": f"sqlite:///{tmp / 'memory.db'}", "postgresql": postgres}

        print("1. history assembly (median of", REPEATS, "runs, real tokenizer)")
        for name, url in backends.items():
            timings = assembly(SQLMemory(create_memory_engine(url)), llm.count_tokens)
            base = timings[SIZES[0]]
            cells = "  ".join(f"{size:>6} msgs {t * 1000:6.2f} ms ({t / base:4.2f}x)" for size, t in timings.items())
            print(f"  {name:<10} {cells}")

        print("2. 8 processes x 250 turns (500 messages) each")
        for name, url in backends.items():
            user = f"writers-{name}"
            began = time.perf_counter()
            seconds = run_writers(url, user)
            wall = time.perf_counter() - began - 3.0  # the writers wait 3 s to start together
            check_every_row_in_order(SQLMemory(create_memory_engine(url)), user)
            turns = 8 * 250
            print(
                f"  {name:<10} {turns / max(seconds):7.1f} turns/s together (slowest writer {max(seconds):.1f}s, "
                f"wall {wall:.1f}s); 4000 rows, every session in order"
            )


if __name__ == "__main__":
    main()
