"""A hostile run: every probe of an attacker and a clumsy user, counted tried / held / failed.

The probes are the test cases that reproduce each finding of the hostile-input
review (bad large-model bodies, hostile files, hostile HTTP input, authorization,
planted instructions, batch-dependent vectors) plus the ones that held then and must
keep holding (crash safety, concurrent writers, isolation, authentication, fallback
failures). Each runs against the real model, embedder, Chroma, SQLite, PostgreSQL and
uvicorn, as in the test suite; this script runs them and prints the counts per finding.

    python benchmarks/hostile_run.py [-k EXPRESSION]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBES = {
    # test module: what it probes
    "test_bad_large_responses": "large model answers 200 with a body that is not a chat completion",
    "test_hostile_ingest": "hostile and clumsy files (recursion, size, encodings, pipes, ragged rows)",
    "test_bad_input": "bad documents never stop the others",
    "test_hostile_http": "hostile HTTP bodies (depth, size, surrogates, NUL)",
    "test_authorization": "authorization (invisible names, write roles)",
    "test_untrusted": "planted instructions in documents",
    "test_embedder_determinism": "vectors independent of their batch",
    "test_crash_safety": "held before: SIGKILL during ingest",
    "test_memory_concurrency": "held before: concurrent writers",
    "test_escalation": "held before: fallback failures (port closed, stall, 5xx, bad key)",
    "test_server": "held before: authentication and isolation over HTTP",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", default="", help="pytest -k expression, to run part of the probes")
    args = parser.parse_args()
    present = [name for name in PROBES if (ROOT / "tests" / f"{name}.py").exists()]
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "probes.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
        command += [f"tests/{name}.py" for name in present] + (["-k", args.k] if args.k else [])
        subprocess.run(command, cwd=ROOT, check=False)
        cases = ET.parse(report).getroot().iter("testcase")
        tried: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        for case in cases:
            module = str(case.get("classname", "")).rsplit(".", 1)[-1]
            if case.find("skipped") is not None:
                skipped[module] += 1
                continue
            tried[module] += 1
            if case.find("failure") is not None or case.find("error") is not None:
                failed[module] += 1
    print(f"\n{'probes':<80} {'tried':>6} {'held':>6} {'failed':>6} {'skipped':>8}")
    for name in present:
        print(
            f"{PROBES[name]:<80} {tried[name]:>6} {tried[name] - failed[name]:>6} {failed[name]:>6} {skipped[name]:>8}"
        )
    total, broke = sum(tried.values()), sum(failed.values())
    print(f"{'all':<80} {total:>6} {total - broke:>6} {broke:>6} {sum(skipped.values()):>8}")
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
