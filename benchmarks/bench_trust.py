"""Answers a user can trust: the calibrated confidence against the shipped defaults of a baseline commit.

Over several real corpora (the PostgreSQL 15, SQLite and git manuals from Debian's
postgresql-doc-15, sqlite3-doc and git-doc, and the sample handbook), each with its own
labelled questions plus one shared off-topic set (benchmarks/offtopic_questions.jsonl),
in one run:

  baseline   the code of `--baseline` (default: the commit before the calibrated
             confidence), shipped defaults, every question asked as a new session
  new        this code, every question drafted and shown (both thresholds 0), so each
             turn has all its signals; its decisions are then simulated from the
             confidence, cross-validated by corpus: the model and both operating
             points are fitted on the other corpora and applied to the held-out one

Printed per corpus and overall, baseline → new: accuracy of the whole reply and of the
model's own words; accuracy of the answers shown without a low-confidence mark and
their coverage of the answerable plain questions; unanswerable (near-domain and
off-topic) declined; answerable wrongly declined; shown answers whose own words state a
number or identifier missing from their cited passages; AUROC of the confidence for
"the shown answer is right"; seconds per answered turn (ratio). `--write-model` fits the
model on every corpus and writes it as the bundled default with its operating points.

Both versions run as worker subprocesses on the same ingested state (ingestion did not
change between them), one after the other.

    python benchmarks/bench_trust.py [--state /tmp/bench-trust] [--limit 30] [--write-model]
    python benchmarks/bench_trust.py --shipped --baseline REV   # both as shipped: did a change cost accuracy?
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

CORPORA: dict[str, tuple[Path, Path, str]] = {
    # name: (documents, questions, file pattern)
    "handbook": (ROOT / "data/handbook", ROOT / "data/handbook_qa.jsonl", "*"),
    "postgres": (Path("/usr/share/doc/postgresql-doc-15/html"), BENCH / "postgres_questions.jsonl", "*.html"),
    "sqlite": (Path("/usr/share/doc/sqlite3"), BENCH / "sqlite_questions.jsonl", "**/*.html"),
    "git": (Path("/usr/share/doc/git-doc"), BENCH / "git_questions.jsonl", "*.html"),
}
OFFTOPIC = BENCH / "offtopic_questions.jsonl"
BASELINE = "000951d"  # the last landed commit before the calibrated confidence
MAX_PAGES = 300  # per corpus: ingestion of a whole manual takes longer than the questions
MAX_PAGE_BYTES = 300_000
TARGET_ACCURACY = 0.90
MAX_FALSE_DECLINE = 0.05


# Worker: runs in the code under test (sys.path set to it), public API only ---------------


def spread(items: list[Any], limit: int, offset: int = 0) -> list[Any]:
    """`limit` items evenly spaced over the list (all when 0), starting `offset` in: every kind keeps its share."""
    if not limit or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[(int(i * step) + offset) % len(items)] for i in range(limit)]


def worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.code)
    from assistant import Assistant, Settings
    from assistant.evals.qa import load_qa

    overrides = json.loads(args.settings)
    bot = Assistant.from_settings(Settings(data_dir=Path(args.data_dir), **overrides))
    items = load_qa(Path(args.questions))
    items = spread(items, int(args.limit), int(args.offset))
    if args.collection not in bot.index.names():
        raise SystemExit(f"collection {args.collection} is missing in {args.data_dir}")
    with Path(args.out).open("w", encoding="utf-8") as out:
        ask_all(bot, items, args, out)


def ask_all(bot: Any, items: list[Any], args: argparse.Namespace, out: Any) -> None:
    for number, item in enumerate(items, start=1):
        started = time.perf_counter()
        reply = bot.ask(
            item.question,
            user_id="eval",
            session_id=f"bench-{args.tag}-{uuid.uuid4().hex[:12]}",
            collection=args.collection,
            route="local",
        )
        seconds = time.perf_counter() - started
        col = bot.index.catalog.require(args.collection)
        chroma = bot.index.store.get(col.chroma_name)
        ids = [s.chunk_id for s in reply.sources]
        texts = bot.index.store.texts(chroma, ids) if ids else {}
        row = {
            "line": item.line,
            "answer": reply.answer,
            "route": reply.route,
            "low_confidence": reply.low_confidence,
            "reason": reply.reason,
            "signals": reply.signals,
            "cited": [texts.get(i, "") for i in ids],
            "seconds": round(seconds, 3),
            "timings": reply.timings,
        }
        out.write(json.dumps(row, default=str) + "\n")
        out.flush()
        print(f"\r  {args.tag}: {number}/{len(items)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


# Driver ------------------------------------------------------------------------------


def ingest(state: Path, name: str) -> None:
    sys.path.insert(0, str(ROOT))
    from assistant import Assistant, Settings

    folder, _, pattern = CORPORA[name]
    data = state / name
    bot = Assistant.from_settings(Settings(data_dir=data))
    if name in bot.index.names():
        return
    source = folder
    if pattern != "*":
        source = state / f"{name}-docs"
        if not source.exists():
            for path in pages(name):
                target = source / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    started = time.perf_counter()
    report = bot.ingest(str(source), collection=name)
    print(f"ingested {name}: {report.summary()} in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def pages(name: str) -> list[Path]:
    """The pages a corpus is built from: every page a question cites, then a seeded sample of the
    others up to MAX_PAGES, leaving out generated index pages over MAX_PAGE_BYTES (the SQLite
    docs' cross-reference lists alone would make 10,000 chunks of links). HTML only: git-doc has
    each page as .txt too."""
    import random

    from assistant.evals.qa import load_qa

    folder, questions, pattern = CORPORA[name]
    cited = {item.source for item in load_qa(questions) if item.source}
    every = sorted(p for p in folder.glob(pattern) if p.stat().st_size <= MAX_PAGE_BYTES)
    chosen = [p for p in every if str(p.relative_to(folder)) in cited]
    others = [p for p in every if p not in chosen]
    random.Random(0).shuffle(others)
    return chosen + others[: max(0, MAX_PAGES - len(chosen))]


def run_worker(
    code: Path,
    state: Path,
    name: str,
    questions: Path,
    tag: str,
    settings: dict[str, Any],
    limit: int,
    offset: int = 0,
) -> Path:
    out = state / f"{tag}-{name}-{questions.stem}.jsonl"
    if out.exists() and out.stat().st_size:
        return out
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--code",
        str(code),
        "--data-dir",
        str(state / name),
        "--collection",
        name,
        "--questions",
        str(questions),
        "--tag",
        tag,
        "--out",
        str(out) + ".partial",
        "--settings",
        json.dumps(settings),
        "--limit",
        str(limit),
        "--offset",
        str(offset),
    ]
    subprocess.run(command, check=True, cwd=code, env={**os.environ, "PYTHONPATH": str(code)})
    Path(str(out) + ".partial").rename(out)
    return out


def baseline_code(state: Path, ref: str) -> Path:
    target = state / f"baseline-{ref}"
    if not target.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(target), ref], check=True)
    return target


def turns_of(path: Path, questions: Path, group: str, limit: int) -> list[Any]:
    from assistant.evals.confidence import LabeledTurn, own_words, unbacked_claims
    from assistant.evals.qa import is_correct, load_qa

    items = {item.line: item for item in load_qa(questions)}
    turns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        item = items[raw["line"]]
        shown = raw["route"] != "abstain"
        words = own_words(raw["answer"]) if shown else ""
        turns.append(
            LabeledTurn(
                question=item.question,
                kind=item.kind or ("answerable" if item.answers else "unanswerable"),
                answerable=bool(item.answers),
                answer=raw["answer"],
                correct=shown and bool(item.answers) and is_correct(raw["answer"], item.answers),
                own_correct=bool(words) and bool(item.answers) and is_correct(words, item.answers),
                route=raw["route"],
                low_confidence=raw["low_confidence"],
                signals=raw["signals"],
                seconds=raw["seconds"],
                group=group,
                unbacked=unbacked_claims(words, raw["cited"]) if words else [],
            )
        )
    return turns


def decisions(
    turns: list[Any], before: list[float], after: list[float], answer_at: float, decline_below: float
) -> list[str]:
    """What the router does with these probabilities: 'confident', 'marked' or 'declined'."""
    out = []
    for turn, p0, p1 in zip(turns, before, after, strict=True):
        if turn.signals.get("best_score") is None or p0 < decline_below or p1 < decline_below:
            out.append("declined")
        elif p1 >= answer_at:
            out.append("confident")
        else:
            out.append("marked")
    return out


def metrics(turns: list[Any], decided: list[str], confidence: list[float] | None) -> dict[str, Any]:
    from assistant.evals.confidence import auroc

    answerable = [(t, d) for t, d in zip(turns, decided, strict=True) if t.answerable]
    unanswerable = [(t, d) for t, d in zip(turns, decided, strict=True) if not t.answerable]
    offtopic = [(t, d) for t, d in unanswerable if t.kind == "offtopic"]
    near = [(t, d) for t, d in unanswerable if t.kind != "offtopic"]
    confident = [t for t, d in zip(turns, decided, strict=True) if d == "confident"]
    plain = [(t, d) for t, d in answerable if t.kind == "plain"]
    shown = [t for t, d in zip(turns, decided, strict=True) if d != "declined"]

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 3) if values else None

    return {
        "reply_accuracy": share([t.correct for t, _ in answerable]),
        "own_words_accuracy": share([t.own_correct for t, _ in answerable]),
        "confident_accuracy": share([t.correct for t in confident]),
        "confident_plain_coverage": share([d == "confident" for _, d in plain]),
        "confident_coverage": share([d == "confident" for _, d in answerable]),
        "near_domain_declined": share([d == "declined" for _, d in near]),
        "offtopic_declined": share([d == "declined" for _, d in offtopic]),
        "answerable_wrongly_declined": share([d == "declined" for _, d in answerable]),
        "shown_with_unbacked_claims": sum(bool(t.unbacked) for t in shown),
        "auroc": auroc([t.correct for t in turns], confidence) if confidence is not None else None,
        "seconds_per_answered_turn": round(
            sum(t.seconds for t in shown if t.route == "local") / max(1, sum(t.route == "local" for t in shown)), 3
        ),
    }


def baseline_decisions(turns: list[Any]) -> list[str]:
    return ["declined" if t.route == "abstain" else "marked" if t.low_confidence else "confident" for t in turns]


def cross_validated(groups: dict[str, list[Any]]) -> dict[str, tuple[list[float], list[float], float, float]]:
    """Per held-out corpus: (before, after) probabilities and the operating points fitted without it."""
    from assistant.evals.confidence import fit, threshold_for_accuracy, threshold_for_declines

    out = {}
    if len(groups) == 1:  # one corpus: five folds of its questions instead
        ((name, turns),) = groups.items()
        folds = {f"{name}-{k}": turns[k::5] for k in range(5)}
        parts = cross_validated(folds)
        order = [t for k in range(5) for t in turns[k::5]]
        before = [p for k in range(5) for p in parts[f"{name}-{k}"][0]]
        after = [p for k in range(5) for p in parts[f"{name}-{k}"][1]]
        back = {id(t): i for i, t in enumerate(order)}
        index = [back[id(t)] for t in turns]
        first = parts[f"{name}-0"]
        return {name: ([before[i] for i in index], [after[i] for i in index], first[2], first[3])}
    for held in groups:
        train = [t for name, turns in groups.items() if name != held for t in turns]
        model = fit(train)
        answer_at, decline_below = operating_points(model, train)
        test = groups[held]
        out[held] = (
            [model.before(t.signals) for t in test],
            [model.after(t.signals) for t in test],
            answer_at,
            decline_below,
        )
    _ = (threshold_for_accuracy, threshold_for_declines)
    return out


def operating_points(model: Any, turns: list[Any]) -> tuple[float, float]:
    """Decline below the highest threshold that declines ≤5% of answerable questions (before and after the
    draft); answer at the lowest threshold whose confident answers are ≥90% right."""
    from assistant.evals.confidence import threshold_for_accuracy, threshold_for_declines

    lowest = [min(model.before(t.signals), model.after(t.signals)) for t in turns]
    decline_below = threshold_for_declines([t.answerable for t in turns], lowest, MAX_FALSE_DECLINE)
    kept = [(t, model.after(t.signals)) for t, low in zip(turns, lowest, strict=True) if low >= decline_below]
    answer_at = threshold_for_accuracy([t.correct for t, _ in kept], [p for _, p in kept], TARGET_ACCURACY)
    return round(max(answer_at, decline_below), 4), decline_below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=Path("/tmp/bench-trust"))
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--limit", type=int, default=60, help="questions per corpus, evenly spread (0: all)")
    parser.add_argument("--offtopic", type=int, default=20, help="off-topic questions per corpus (0: all 40)")
    parser.add_argument("--write-model", action="store_true", help="fit on every corpus; write chains/confidence.json")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--shipped",
        action="store_true",
        help="run this tree with its shipped defaults too, scored as the baseline is (no refit): "
        "for changes that must not cost accuracy, such as speed-ups",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("--code", "--data-dir", "--collection", "--questions", "--tag", "--out", "--settings", "--offset"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sys.path.insert(0, str(ROOT))
    args.state.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.corpora.split(",") if n]
    new: dict[str, list[Any]] = {}
    old: dict[str, list[Any]] = {}
    old_code = None if args.skip_baseline else baseline_code(args.state, args.baseline)
    for number, name in enumerate(names):
        ingest(args.state, name)
        for questions, limit in ((CORPORA[name][1], args.limit), (OFFTOPIC, args.offtopic)):
            offset = number if questions == OFFTOPIC else 0  # each corpus gets other off-topic questions
            wide_open = {"answer_confidence": 0.0, "decline_confidence": 0.0}
            settings = {} if args.shipped else wide_open
            path = run_worker(ROOT, args.state, name, questions, "new", settings, limit, offset)
            new.setdefault(name, []).extend(turns_of(path, questions, name, limit))
            if old_code is not None:
                path = run_worker(old_code, args.state, name, questions, "baseline", {}, limit, offset)
                old.setdefault(name, []).extend(turns_of(path, questions, name, limit))

    rows: dict[str, dict[str, Any]] = {}
    if args.shipped:  # both trees as shipped, scored alike, interleaved per corpus
        for name in names:
            rows[f"{name} this tree"] = metrics(new[name], baseline_decisions(new[name]), None)
            if name in old:
                rows[f"{name} baseline"] = metrics(old[name], baseline_decisions(old[name]), None)
        every_new = [t for name in names for t in new[name]]
        rows["all this tree"] = metrics(every_new, baseline_decisions(every_new), None)
        if old:
            every_old = [t for name in names for t in old.get(name, [])]
            rows["all baseline"] = metrics(every_old, baseline_decisions(every_old), None)
        print_table(rows)
        (args.state / "results-shipped.json").write_text(json.dumps(rows, indent=1))
        return
    folds = cross_validated(new)
    all_new: list[Any] = []
    all_decided: list[str] = []
    all_conf: list[float] = []
    for name in names:
        before, after, answer_at, decline_below = folds[name]
        decided = decisions(new[name], before, after, answer_at, decline_below)
        confidence = [0.0 if d == "declined" else p for d, p in zip(decided, after, strict=True)]
        rows[f"{name} new"] = {
            **metrics(new[name], decided, confidence),
            "answer_at": answer_at,
            "decline_below": decline_below,
        }
        all_new += new[name]
        all_decided += decided
        all_conf += confidence
        if name in old:
            rows[f"{name} baseline"] = metrics(old[name], baseline_decisions(old[name]), None)
    rows["all new (held-out corpus)"] = metrics(all_new, all_decided, all_conf)
    if old:
        every_old = [t for name in names for t in old.get(name, [])]
        rows["all baseline"] = metrics(every_old, baseline_decisions(every_old), None)
        ratio = rows["all new (held-out corpus)"]["seconds_per_answered_turn"] / max(
            1e-9, rows["all baseline"]["seconds_per_answered_turn"]
        )
        rows["all new (held-out corpus)"]["seconds_ratio_to_baseline"] = round(ratio, 3)
    print_table(rows)
    (args.state / "results.json").write_text(json.dumps(rows, indent=1))
    if args.write_model:
        write_model([t for name in names for t in new[name]], names)


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    keys = [
        "reply_accuracy",
        "own_words_accuracy",
        "confident_accuracy",
        "confident_plain_coverage",
        "near_domain_declined",
        "offtopic_declined",
        "answerable_wrongly_declined",
        "shown_with_unbacked_claims",
        "auroc",
        "seconds_per_answered_turn",
    ]
    short = [
        "reply",
        "own",
        "conf.acc",
        "plain cov",
        "near decl",
        "offtopic decl",
        "wrong decl",
        "unbacked",
        "AUROC",
        "s/turn",
    ]
    print("| run | " + " | ".join(short) + " |")
    print("|---" * (len(short) + 1) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join("–" if row.get(k) is None else str(row[k]) for k in keys) + " |")
    for name, row in rows.items():
        extra = {k: v for k, v in row.items() if k not in keys}
        if extra:
            print(f"{name}: {extra}")


def write_model(turns: list[Any], names: list[str]) -> None:
    from assistant.evals.confidence import fit
    from chains.confidence import BUNDLED_MODEL

    model = fit(turns, fitted_on=f"{len(turns)} labelled turns over {', '.join(names)} (benchmarks/bench_trust.py)")
    answer_at, decline_below = operating_points(model, turns)
    data = json.loads(model.to_json())
    data["metrics"] = {"answer_confidence": answer_at, "decline_confidence": decline_below}
    BUNDLED_MODEL.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {BUNDLED_MODEL}: answer_confidence {answer_at}, decline_confidence {decline_below}")


if __name__ == "__main__":
    main()
