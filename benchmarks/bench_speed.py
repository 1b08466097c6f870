"""Speed, the regression guard of issue 23 ("Fast from the first keystroke"): this tree against the
hand-assembled LangChain pipeline (HandAssembled, benchmarks/bench_pipeline.py) and the previous
release, in one run. Run by hand, never from the tests:

    .venv/bin/python benchmarks/bench_speed.py                      # vs a0c472e: 8 turns, 3 cold runs
    .venv/bin/python benchmarks/bench_speed.py --turns 3 --cold-runs 1 --skip-langchain

Each contender runs in a process of its own (cwd = its own tree, so its own modules are imported)
over data/handbook, with the bundled model and embedder; the contenders take turns, in rotating
order, and medians are compared:
  1. answered turn: `Assistant.ask` / `HandAssembled.turn`, each question a new session; then a
     few follow-ups in one session;
  2. time to first token, warm: the first text chunk of `Assistant.stream` / of `llm.stream(messages)`
     in the hand pipeline, other questions, each a new session;
  3. cold first answer: `python -m assistant.cli ask Q -c handbook` in a fresh process over a data
     directory ingested beforehand (ASSISTANT_DATA_DIR), to the first answer text on stdout (a pty)
     and to exit; LangChain: a fresh process building the hand pipeline over its persisted Chroma.
     One untimed run each first, so that no contender pays for the disk cache alone;
  4. import time of `from assistant import Assistant` against its floor, as bench_import.py;
  5. this tree's turns stage by stage: reply.timings, and reply.after's after-turn work.
Prints medians next to ratios and the issue's targets, each "met" or "not met".
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from bench_import import export, timed

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "handbook"
QUESTIONS = ROOT / "data" / "handbook_qa.jsonl"
FOLLOWUPS = ("How often is the X200 serviced?", "And what about its warranty?", "What does error E17 mean on it?")
STAGES = ("load", "recall", "condense", "retrieve", "prompt", "first token", "generate", "checks", "large", "store")
FLOOR = "import langchain_core.language_models, sqlalchemy"
STARTED = time.perf_counter()
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

# Runs in each contender's tree. Answers [op, question, session] lines on stdin with a JSON line each.
WORKER = r"""
import json, os, sys, time
from pathlib import Path
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # what a library prints goes to the log, not into the answers
kind, mode, state, corpus = sys.argv[1:5]
if kind == "langchain":
    sys.path.insert(0, "benchmarks")
    import bench_pipeline
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import HumanMessage, SystemMessage
    hand = bench_pipeline.HandAssembled(Path(state))
    where = bench_pipeline.__file__
    if mode == "cold":
        from langchain_chroma import Chroma
        hand.store = Chroma(persist_directory=str(Path(state) / "chroma"), embedding_function=hand.embeddings)
    else:
        hand.embeddings.embed_query("warm up")
        hand.index(bench_pipeline.corpus_files(Path(corpus), None))

    def text_chunks(question, session):  # HandAssembled.turn, streamed
        history = SQLChatMessageHistory(session_id=session, connection=f"sqlite:///{Path(state) / 'chat.db'}")
        context = "\n\n".join(d.page_content for d in hand.retrieve(question))
        messages = [SystemMessage(f"Answer using this context:\n{context}"), *history.messages[-4:],
                    HumanMessage(question)]
        try:
            chunks = hand.llm.stream(messages)
            pieces = [next(chunks).content]
        except ValueError:  # overflow, as in HandAssembled.turn
            chunks = hand.llm.stream([SystemMessage(f"Answer using this context:\n{context[:3000]}"), messages[-1]])
            pieces = [next(chunks).content]
        yield pieces[0]
        for chunk in chunks:
            pieces.append(chunk.content)
            yield chunk.content
        history.add_user_message(question)
        history.add_ai_message("".join(pieces))

    ask = hand.turn

    def finished(reply):
        return {}
else:
    import assistant
    from assistant import Assistant, Settings
    bot = Assistant.from_settings(Settings(data_dir=Path(state)))
    bot.ingest(Path(corpus), collection="handbook")
    where = assistant.__file__

    def finished(reply):  # after-turn work waited for, so that it never runs into another's turn
        after = getattr(reply, "after", None)
        done = after.result() if after is not None else None
        return {"timings": dict(reply.timings), "after": dict(getattr(done, "timings", {}) or {}),
                "route": reply.route}

    def text_chunks(question, session):
        for chunk in bot.stream(question, session_id=session, collection="handbook"):
            if chunk.text:
                yield chunk.text
            if chunk.reply is not None:
                finished(chunk.reply)

    def ask(question, session):
        return bot.ask(question, session_id=session, collection="handbook")
if mode == "cold":
    for text in text_chunks(sys.argv[5], "cold"):
        out.write(text)
        out.flush()
    sys.exit(0)
out.write(json.dumps({"where": where}) + "\n")
for line in sys.stdin:
    op, question, session = json.loads(line)
    began = time.perf_counter()
    if op == "ask":
        reply = ask(question, session)
        result = {"seconds": time.perf_counter() - began, **finished(reply)}
    else:
        result = {"first": None}
        for text in text_chunks(question, session):
            if result["first"] is None and text.strip():
                result["first"] = time.perf_counter() - began
    out.write(json.dumps({"seconds": time.perf_counter() - began, **result}) + "\n")
"""


class Worker:
    """One contender in a process of its own, warm between calls."""

    def __init__(self, name: str, kind: str, tree: Path, state: Path, log: IO[bytes]) -> None:
        self.name, self.log = name, log
        argv = [sys.executable, "-c", WORKER, kind, "warm", str(state), str(CORPUS)]
        self.proc = subprocess.Popen(argv, cwd=tree, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            sys.exit(f"{self.name}: the worker stopped\n{self.log.read().decode(errors='replace')[-3000:]}")
        return json.loads(line)

    def __call__(self, op: str, question: str, session: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps([op, question, session]) + "\n").encode())
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def load_questions(count: int) -> list[str]:
    """Answerable questions, one document after another, so that the first few cover them all."""
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    by_source: dict[str, list[str]] = {}
    for row in rows:
        if row.get("source"):
            by_source.setdefault(row["source"], []).append(row["question"])
    spread = [
        q for rank in range(max(map(len, by_source.values()))) for qs in by_source.values() for q in qs[rank:][:1]
    ]
    return [spread[i % len(spread)] for i in range(count)]


def note(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


def alternate(workers: dict[str, Worker], calls: list[tuple[str, str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Each call made by every contender, in an order that rotates from one call to the next."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in workers}
    names = list(workers)
    for number, call in enumerate(calls):
        note(f"{call[0]} {call[2]}: {call[1]}")
        for name in names[number % len(names) :] + names[: number % len(names)]:
            results[name].append(workers[name](*call))
    return results


ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def cold_run(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float | None, float | None]:
    """Seconds to the first text on stdout (a terminal, so the CLI streams) and to exit."""
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=err)
        os.close(slave)
        first, seen = None, ""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            if first is None:
                seen += data.decode(errors="replace")
                first = time.perf_counter() - began if re.search(r"\w", ANSI.sub("", seen)) else None
        proc.wait()
        total = time.perf_counter() - began
        os.close(master)
        if proc.returncode:  # reported, and the run left out: the other measurements still count
            err.seek(0)
            print(f"{' '.join(argv[1:4])} in {cwd} exited {proc.returncode}: left out", file=sys.stderr)
            print(err.read().decode(errors="replace")[-1500:], file=sys.stderr)
            return None, None
    return first, total


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def below(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def row(label: str, values: dict[str, float | None], target: str = "", verdict: bool | None = None) -> None:
    this = values.get("this tree")
    cells = "".join(f"{v:11.3f}" if v is not None else f"{'–':>11}" for v in values.values())
    ratios = "".join(
        f"{this / v:10.2f}x" if this is not None and v else f"{'–':>11}" for n, v in values.items() if n != "this tree"
    )
    mark = "" if not target else ("not measured" if verdict is None else "met" if verdict else "NOT MET")
    print(f"{label:32}{cells}{ratios}   {target:20}{mark}".rstrip())


def stage_table(turns: list[dict[str, Any]]) -> None:
    timings = [t.get("timings", {}) for t in turns]
    after = [t.get("after", {}) for t in turns]
    total = statistics.mean(t.get("total_ms", 0.0) for t in timings) or 1.0
    print(f"\nthis tree, stage by stage: mean of {len(turns)} answered turns (reply.timings; ms, share of total)")
    known = [f"{s.replace(' ', '_')}_ms" for s in STAGES]
    extra = sorted({k for t in timings for k in t} - {*known, "total_ms"})
    accounted = 0.0
    for key, rows in [(k, timings) for k in [*known, *extra]] + [(k, after) for k in ("learn_ms", "summary_ms")]:
        ran = sum(key in r for r in rows)
        mean = statistics.mean(r.get(key, 0.0) for r in rows)
        if rows is timings and key != "first_token_ms":
            accounted += mean
        when = " (from the start of the turn)" if key == "first_token_ms" else ""
        when = " (after the reply, in the background)" if rows is after else when
        print(f"  {key[:-3].replace('_', ' '):14}{mean:9.1f} ms {mean / total:6.1%}   in {ran}/{len(rows)} turns{when}")
    print(f"  {'unaccounted':14}{total - accounted:9.1f} ms {(total - accounted) / total:6.1%}")
    print(f"  {'total':14}{total:9.1f} ms {1:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="a0c472e", help="the previous release: a git revision")
    parser.add_argument("--turns", type=int, default=8, help="timed turns per contender (and as many for TTFT)")
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes per contender")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters per import statement")
    parser.add_argument("--skip-baseline", action="store_true", help="no previous release")
    parser.add_argument("--skip-langchain", action="store_true", help="no hand-assembled LangChain pipeline")
    args = parser.parse_args()

    questions = load_questions(2 * args.turns)
    turn_qs, first_qs = questions[: args.turns], questions[args.turns :]
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        work = Path(tmp)
        trees = {"this tree": ("assistant", ROOT)}
        if not args.skip_langchain:
            trees["LangChain"] = ("langchain", ROOT)
        if not args.skip_baseline:
            trees[args.baseline] = ("assistant", export(args.baseline, work / "baseline"))
        state = {name: work / f"state-{number}" for number, name in enumerate(trees)}
        logs = {name: (work / f"log-{number}").open("w+b") for number, name in enumerate(trees)}
        print(f"{len(turn_qs)} questions of {QUESTIONS.name} over {CORPUS.name}; contenders take turns")
        workers = {name: Worker(name, kind, tree, state[name], logs[name]) for name, (kind, tree) in trees.items()}
        for name, worker in workers.items():  # ready, ingested: then one untimed turn of each kind
            note(f"{name}: starting (ingest, warm-up turns)")
            print(f"  {name:10} runs {worker.read()['where']}")
            worker("ask", "What does E11 mean?", "warm-1")
            worker("stream", "What does E11 mean?", "warm-2")
        asked = alternate(workers, [("ask", q, f"turn-{n}") for n, q in enumerate(turn_qs)])
        streamed = alternate(workers, [("stream", q, f"first-{n}") for n, q in enumerate(first_qs)])
        followed = alternate(workers, [("ask", q, "followups") for q in FOLLOWUPS])
        for worker in workers.values():
            worker.close()

        cold: dict[str, list[tuple[float | None, float | None]]] = {name: [] for name in trees}
        names = list(trees)
        for number in range(args.cold_runs + 1):  # run 0: untimed
            for name in names[number % len(names) :] + names[: number % len(names)]:
                kind, tree = trees[name]
                question = turn_qs[number % len(turn_qs)]
                if kind == "langchain":
                    argv = [sys.executable, "-c", WORKER, kind, "cold", str(state[name]), str(CORPUS), question]
                else:
                    argv = [sys.executable, "-m", "assistant.cli", "ask", question, "-c", "handbook"]
                env = {**ENV, "ASSISTANT_DATA_DIR": str(state[name])}
                note(f"cold {name}: {question}")
                timing = cold_run(argv, tree, env)
                if number:
                    cold[name].append(timing)

        statements = {"this tree": ROOT} | ({} if args.skip_baseline else {args.baseline: trees[args.baseline][1]})
        imports: dict[str, list[float]] = {"floor": [], **{name: [] for name in statements}}
        note("imports")
        for _ in range(args.import_runs):
            imports["floor"].append(timed(FLOOR, ROOT))
            for name, tree in statements.items():
                imports[name].append(timed("from assistant import Assistant", tree))
        for log in logs.values():
            log.close()

    columns = list(trees)
    print(f"\nmedians (s), then this tree ÷ each other contender; {len(turn_qs)} turns, {args.cold_runs} cold runs")
    heads = "".join(f"{c[:10]:>11}" for c in columns) + "".join(f"{'÷' + c[:9]:>11}" for c in columns[1:])
    print(f"{'':32}{heads}   target")
    turn = {n: median([r["seconds"] for r in asked[n]]) for n in columns}
    ratio = (turn["this tree"] or 0) / lc if (lc := turn.get("LangChain")) else None
    row("answered turn, new session", turn, "≤ 0.5x LangChain", None if ratio is None else ratio <= 0.5)
    row("follow-up turn, one session", {n: median([r["seconds"] for r in followed[n][1:]]) for n in columns})
    first = {n: median([r["first"] for r in streamed[n]]) for n in columns}
    row("time to first token, warm", first, "≤ 1 s (this tree)", below(first["this tree"], 1.0))
    cold_first = {n: median([f for f, _ in cold[n]]) for n in columns}
    row("cold CLI, to the first answer", cold_first, "≤ 4 s (this tree)", below(cold_first["this tree"], 4.0))
    row("cold CLI, to exit", {n: median([t for _, t in cold[n]]) for n in columns})
    floor = statistics.median(imports["floor"])
    importing = {n: statistics.median(imports[n]) if n in imports else None for n in columns}
    row("from assistant import Assistant", importing)
    over = {n: v / floor if v is not None else None for n, v in importing.items()}
    row("  the same ÷ its floor (x)", over, "≤ 1.2x floor", below(over["this tree"], 1.2))
    print(f"floor: {FLOOR}, {floor:.3f} s")
    print("cold: LangChain = a fresh process building HandAssembled over its persisted Chroma; – : not measured")
    routes = [r.get("route") for r in asked["this tree"]]
    print(f"this tree's routes: {', '.join(f'{k} {routes.count(k)}' for k in sorted(set(map(str, routes))))}")
    stage_table(asked["this tree"] + followed["this tree"])


if __name__ == "__main__":
    main()
