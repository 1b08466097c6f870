"""Import time of this tree against a baseline revision, measured in the same run.

    python benchmarks/bench_import.py                 # against HEAD~1
    python benchmarks/bench_import.py --baseline 10fcb53 --repeats 15
    python benchmarks/bench_import.py --baseline a0c472e --top 15   # + what this tree imports beyond the floor

Each statement runs in a fresh interpreter, alternating between the two trees, and
the median is compared; the floor (what `from assistant import Assistant` cannot
avoid importing: langchain-core's models and SQLAlchemy) is measured alongside.
Prints ratios (medians in milliseconds only for orientation: machines are noisy).
`--top N` lists the packages `from assistant import Assistant` imports beyond the
floor, by their own import time (python -X importtime), in both trees.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATEMENTS = {
    "import assistant": "import assistant",
    "from assistant import Assistant": "from assistant import Assistant",
    "floor": "import langchain_core.language_models, sqlalchemy",
}


def timed(statement: str, tree: Path) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def beyond_floor(statement: str, tree: Path) -> collections.Counter[str]:
    """Microseconds of import time, by top-level package, of what `statement` imports beyond the floor."""

    def self_times(code: str) -> dict[str, int]:
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], cwd=tree, capture_output=True, text=True, check=True
        ).stderr
        times: dict[str, int] = {}
        for line in err.splitlines():
            parts = line.removeprefix("import time:").split("|")
            if line.startswith("import time:") and parts[0].strip().isdigit():
                times[parts[2].strip()] = int(parts[0])
        return times

    floor = self_times(STATEMENTS["floor"])
    packages: collections.Counter[str] = collections.Counter()
    for module, micros in self_times(statement).items():
        if module not in floor:
            packages[module.split(".")[0]] += micros
    return packages


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--top", type=int, default=0, help="list the N packages imported beyond the floor")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = export(args.baseline, Path(tmp))
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for name, statement in STATEMENTS.items():
                for label, tree in (("this tree", ROOT), ("baseline", baseline)):
                    if name == "floor" and label == "baseline":
                        continue
                    samples.setdefault((name, label), []).append(timed(statement, tree))
        extra = {
            label: beyond_floor(STATEMENTS["from assistant import Assistant"], tree)
            for label, tree in (("this tree", ROOT), ("baseline", baseline))
            if args.top
        }
    median = {key: statistics.median(values) for key, values in samples.items()}
    floor = median[("floor", "this tree")]
    print(f"baseline {args.baseline}, {args.repeats} runs each, medians as ratios")
    print(f"{'floor: ' + STATEMENTS['floor']:62} {floor * 1000:6.0f} ms")
    for name in ("import assistant", "from assistant import Assistant"):
        this, base = median[(name, "this tree")], median[(name, "baseline")]
        print(
            f"{name:34} this/baseline {this / base:5.2f}x   this/floor {this / floor:5.2f}x   "
            f"baseline/floor {base / floor:5.2f}x   ({this * 1000:.0f} ms, baseline {base * 1000:.0f} ms)"
        )
    for label, packages in extra.items():
        print(f"\n{label}: beyond the floor, by package (import time of its own modules, ms, -X importtime)")
        for package, micros in packages.most_common(args.top):
            print(f"  {micros / 1000:8.1f}  {package}")


if __name__ == "__main__":
    main()
