"""A writer process for the memory concurrency test and benchmark.

    python -m tests.memory_writer URL USER WRITER TURNS START_AT

Waits until the epoch time START_AT (so that all writers begin together), then
writes TURNS turns (two messages each) for USER, alternating between its own
session "own-WRITER" and the session "shared" that every writer uses. Prints the
seconds its writes took.
"""

from __future__ import annotations

import sys
import time

from memory import NewMessage, SQLMemory, create_memory_engine


def main() -> None:
    url, user, writer, turns, start_at = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        float(sys.argv[5]),
    )
    memory = SQLMemory(create_memory_engine(url))
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    for n in range(turns):
        session = f"own-{writer}" if n % 2 == 0 else "shared"
        memory.add_turn(
            user,
            session,
            NewMessage("user", f"w{writer} t{n} question", token_count=3),
            NewMessage("assistant", f"w{writer} t{n} answer", token_count=3, route="local"),
        )
    print(f"{time.perf_counter() - began:.3f}")


if __name__ == "__main__":
    main()
