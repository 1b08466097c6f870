"""Does this tree answer exactly as a baseline revision does? For restructures that must not
change behaviour; run by hand:

    .venv/bin/python benchmarks/bench_same_answers.py --baseline 10fcb53
    .venv/bin/python benchmarks/bench_same_answers.py --corpus /usr/share/doc/sqlite3 \\
        --questions benchmarks/sqlite_questions.jsonl --limit 20 --files 60

Each tree runs in its own interpreter (its own code on sys.path) over the same documents
and questions, in turn (this, baseline, baseline, this), with the bundled model (greedy) and embedder: it
ingests into a fresh data directory, then asks each question in a session of its own.
Prints how many replies are identical (text, route, cited chunks), accuracy of each
(a reply holding an expected answer) and the seconds per turn as a ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside each tree; uses only the public API both revisions share.
RUN = """
import json, sys, time
from pathlib import Path
from assistant import Assistant, Settings

corpus, questions, state, limit, files = sys.argv[1:6]
lines = Path(questions).read_text().splitlines()
items = [json.loads(line) for line in lines if line.strip() and not line.startswith("#")][: int(limit)]
bot = Assistant.from_settings(Settings(data_dir=Path(state)))
source = Path(corpus)
if int(files) and source.is_dir():  # the pages the questions cite, then the first others
    cited = [source / i["source"] for i in items if i.get("source") and (source / i["source"]).is_file()]
    others = sorted(p for p in source.rglob("*.html") if p.is_file() and p not in cited)
    picked = Path(state) / "corpus"
    for path in list(dict.fromkeys(cited)) + others[: max(0, int(files) - len(cited))]:
        target = picked / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    source = picked
bot.ingest(source, collection="bench")
out = []
for number, item in enumerate(items):
    began = time.perf_counter()
    reply = bot.ask(item["question"], session_id=f"same-{number}", collection="bench")
    out.append({
        "answer": reply.answer,
        "route": reply.route,
        "chunks": [s.citation for s in reply.sources],
        "seconds": time.perf_counter() - began,
        "right": any(a.lower() in reply.answer.lower() for a in item.get("answers") or []),
        "answerable": bool(item.get("answers")),
    })
print(json.dumps(out))
"""


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(tree: Path, args: argparse.Namespace, state: Path) -> list[dict]:
    argv = [str(args.corpus), str(args.questions), str(state), str(args.limit), str(args.files)]
    result = subprocess.run([sys.executable, "-c", RUN, *argv], cwd=tree, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{tree}: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~1", help="git revision to compare with")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "handbook")
    parser.add_argument("--questions", type=Path, default=ROOT / "data" / "handbook_qa.jsonl")
    parser.add_argument("--limit", type=int, default=28, help="questions asked")
    parser.add_argument("--files", type=int, default=0, help="use only the first N files of the corpus (0: all)")
    parser.add_argument("--rounds", type=int, default=2, choices=(1, 2), help="2: each tree twice, in turn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = export(args.baseline, Path(tmp) / "baseline")
        # Two rounds in opposite order, so that neither tree always runs on a cold cache.
        this = run(ROOT, args, Path(tmp) / "this-1")
        base = run(baseline, args, Path(tmp) / "baseline-1")
        base_again = run(baseline, args, Path(tmp) / "baseline-2") if args.rounds > 1 else base
        this_again = run(ROOT, args, Path(tmp) / "this-2") if args.rounds > 1 else this
    same = sum(
        a == b
        for a, b in (
            ((x["answer"], x["route"], x["chunks"]), (y["answer"], y["route"], y["chunks"]))
            for x, y in zip(this, base, strict=True)
        )
    )
    answerable = [i for i, x in enumerate(this) if x["answerable"]]
    print(f"baseline {args.baseline}; {len(this)} questions over {args.corpus}")
    print(f"identical replies (text, route, citations): {same}/{len(this)}")
    for label, rows in (("this tree", this), ("baseline", base)):
        right = sum(rows[i]["right"] for i in answerable)
        print(f"{label:10} answerable replies holding an expected answer: {right}/{len(answerable)}")
    seconds_this = sum(x["seconds"] for x in this + this_again)
    per_turn = seconds_this / sum(y["seconds"] for y in base + base_again)
    print(f"seconds per turn, this/baseline: {per_turn:.2f}x")
    for number, (x, y) in enumerate(zip(this, base, strict=True)):
        if (x["answer"], x["route"], x["chunks"]) != (y["answer"], y["route"], y["chunks"]):
            print(f"  differs #{number}: this {x['route']} {x['answer'][:80]!r}")
            print(f"  {'':>{len(str(number)) + 10}}baseline {y['route']} {y['answer'][:80]!r}")


if __name__ == "__main__":
    main()
