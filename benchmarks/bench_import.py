"""Import time of this tree against a baseline revision, measured in the same run.

    python benchmarks/bench_import.py                 # against HEAD~1
    python benchmarks/bench_import.py --baseline 10fcb53 --repeats 15

Each statement runs in a fresh interpreter, alternating between the two trees, and
the median is compared; the floor (what `from assistant import Assistant` cannot
avoid importing: langchain-core's models and SQLAlchemy) is measured alongside.
Prints ratios, not absolute times: machines are noisy.
"""

from __future__ import annotations

import argparse
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


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=9)
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
    median = {key: statistics.median(values) for key, values in samples.items()}
    floor = median[("floor", "this tree")]
    print(f"baseline {args.baseline}, {args.repeats} runs each, medians as ratios")
    for name in ("import assistant", "from assistant import Assistant"):
        this, base = median[(name, "this tree")], median[(name, "baseline")]
        print(
            f"{name:34} this/baseline {this / base:5.2f}x   this/floor {this / floor:5.2f}x   "
            f"baseline/floor {base / floor:5.2f}x"
        )


if __name__ == "__main__":
    main()
