"""Ingestion throughput, retrieval quality and incremental re-ingest on the PostgreSQL 15 manual.

One run, same pages (the first N sorted *.html files of /usr/share/doc/postgresql-doc-15/html,
copied into a temporary folder), same bundled all-MiniLM-L6-v2 embedder, loaded before any timing:

  baseline:  BeautifulSoup(html, "html.parser").get_text() → RecursiveCharacterTextSplitter(1000, 200)
             → HuggingFaceEmbeddings → Chroma.from_documents  (the hand-assembled LangChain pipeline)
  ours:      Assistant.ingest(folder, "pg15") with embedding_backend "onnx-int8" (the default) and "torch"

Measured:
  1. wall seconds and chunks/s of the first full ingest; ratio of ours to the baseline's chunks/s
     (the chunks differ: ours are ≤180 embedder tokens, the baseline's 1,000 characters, so the
     seconds ratio, same pages on both sides, is printed too);
  2. hit@1, hit@5 and MRR@5 on benchmarks/postgres_questions.jsonl (the rank of the first of the
     top 5 passages whose source page is the expected one), counting only questions whose page
     was ingested;
  3. onnx-int8 only: re-ingest of the unchanged folder (nothing may be added) and its speedup;
  4. onnx-int8 only: 10 pages edited and 5 deleted, then ingest again: files changed/removed,
     chunks added/deleted, time against the first ingest, fraction of chunks touched, and
     DocumentIndex.check() consistency.

Ratios only, no absolute claims: the machines are noisy. A one-line JSON summary ends the output.
Run from the repository root (the full manual takes about 30 minutes on 2 cores):

    .venv/bin/python benchmarks/bench_ingest.py [--pages 300]
    .venv/bin/python benchmarks/bench_ingest.py --pages 60        # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

# Before anything imports transformers or huggingface_hub: nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")
BACKENDS = ("onnx-int8", "torch")
COLLECTION = "pg15"  # "pg" is refused: collection names need 3 to 512 characters
K = 5
EDITS = 10
DELETES = 5


def load_questions(path: Path) -> list[tuple[str, set[str]]]:
    """(question, expected page file names); rows carry "source" (a file name) or "sources" (a list)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = []
    for r in rows:
        expected = r.get("sources") or ([r["source"]] if r.get("source") else [])
        if expected:
            out.append((r["question"], {Path(s).name for s in expected}))
    return out


def rank_metrics(ranked_sources: list[list[str]], expected: list[set[str]]) -> dict[str, float]:
    """hit@1, hit@K and MRR@K from the rank of the first retrieved chunk whose page is expected."""
    if not expected:
        return {"hit@1": float("nan"), f"hit@{K}": float("nan"), "mrr": float("nan")}
    hit1 = hitk = rr = 0.0
    for sources, want in zip(ranked_sources, expected, strict=True):
        rank = next((i for i, s in enumerate(sources[:K], start=1) if s in want), None)
        if rank is not None:
            hit1 += rank == 1
            hitk += 1
            rr += 1 / rank
    n = len(expected)
    return {"hit@1": hit1 / n, f"hit@{K}": hitk / n, "mrr": rr / n}


class Baseline:
    """The hand-assembled LangChain pipeline, piece by piece."""

    def __init__(self, workdir: Path) -> None:
        from langchain_huggingface import HuggingFaceEmbeddings

        from retrievers.embedder import bundled_embedder_path

        self.workdir = workdir
        self.embeddings = HuggingFaceEmbeddings(model_name=str(bundled_embedder_path()))
        self.store: Any = None

    def index(self, files: list[Path]) -> int:
        from bs4 import BeautifulSoup
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        docs = [
            Document(
                page_content=BeautifulSoup(f.read_text(encoding="utf-8", errors="replace"), "html.parser").get_text(),
                metadata={"source": f.name},
            )
            for f in files
        ]
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        self.store = Chroma.from_documents(chunks, self.embeddings, persist_directory=str(self.workdir))
        return len(chunks)

    def sources(self, question: str) -> list[str]:
        return [d.metadata.get("source", "") for d in self.store.similarity_search(question, k=K)]


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def show(label: str, report: Any, seconds: float) -> None:
    print(f"  {label}: {report.summary()} (wall {seconds:.2f}s)")
    for issue in report.files_failed:
        print(f"    FAILED {issue}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=None, help="use only the first N sorted pages (default: all)")
    parser.add_argument("--manual", type=Path, default=MANUAL, help="folder of the manual's *.html pages")
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "postgres_questions.jsonl")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="embedder backends to measure, comma-separated (onnx-int8 first)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args()

    pages = sorted(args.manual.glob("*.html"))[: args.pages]
    if len(pages) < EDITS + DELETES:
        parser.error(f"need at least {EDITS + DELETES} pages for the edit/delete step, got {len(pages)}")

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        return run(args, pages, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, pages: list[Path], work: Path) -> int:
    from assistant import Assistant, Settings

    folder = work / "pages"
    folder.mkdir()
    for p in pages:
        shutil.copy2(p, folder / p.name)
    files = sorted(folder.glob("*.html"))
    n = len(files)
    names = {f.name for f in files}

    questions = load_questions(args.questions)
    asked = [(q, want) for q, want in questions if want & names]
    print(f"pages: {n} from {args.manual} (copied to {folder})")
    print(f"questions: {len(asked)} of {len(questions)} have their expected page among the ingested pages")
    checks: list[tuple[str, bool]] = []

    # 1. First full ingest, embedders warm on both sides ----------------------------------------
    print("\n1. first ingest")
    base = Baseline(work / "baseline")
    base.embeddings.embed_query("warm up")
    base_chunks, base_s = timed(base.index, files)
    print(f"  baseline: {base_chunks} chunks in {base_s:.2f}s")

    bots: dict[str, Any] = {}
    first: dict[str, tuple[Any, float]] = {}
    for backend in args.backends.split(","):
        bot = Assistant.from_settings(Settings(data_dir=work / backend, embedding_backend=backend))
        bot.index.embedders.default().embed_query("warm up")
        report, seconds = timed(bot.ingest, folder, COLLECTION)
        show(backend, report, seconds)
        checks.append((f"{backend}: first ingest indexed all {n} pages", report.files_new == n))
        bots[backend] = bot
        first[backend] = (report, seconds)

    # 2. Retrieval quality ------------------------------------------------------------------------
    expected = [want for _, want in asked]
    quality = {"baseline": rank_metrics([base.sources(q) for q, _ in asked], expected)}
    for backend, bot in bots.items():
        retriever = bot.retriever(COLLECTION)
        ranked = [[p.source for p in retriever.search(q, k=K)] for q, _ in asked]
        quality[backend] = rank_metrics(ranked, expected)

    base_rate = base_chunks / base_s
    print(f"\n2. throughput and retrieval quality ({len(asked)} questions, top {K})")
    header = (
        f"{'pipeline':10} {'chunks':>7} {'seconds':>8} {'chunks/s':>9} {'ratio':>7} {'time ratio':>10} "
        f"{'hit@1':>6} {f'hit@{K}':>6} {'MRR':>6}"
    )
    print(header)
    print("-" * len(header))

    def row(name: str, chunks: int, seconds: float) -> None:
        q = quality[name]
        print(
            f"{name:10} {chunks:7d} {seconds:8.2f} {chunks / seconds:9.1f} {chunks / seconds / base_rate:6.2f}x "
            f"{base_s / seconds:9.2f}x {q['hit@1']:6.2f} {q[f'hit@{K}']:6.2f} {q['mrr']:6.2f}"
        )

    row("baseline", base_chunks, base_s)
    for backend, (report, seconds) in first.items():
        row(backend, report.chunks_added, seconds)
    print(
        "ratio = chunks/s ÷ baseline chunks/s; time ratio = baseline seconds ÷ seconds (same pages). "
        "> 1: ours is faster."
    )

    # 3. Re-ingest of the unchanged folder (onnx-int8) --------------------------------------------
    bot = bots["onnx-int8"]
    first_s = first["onnx-int8"][1]
    again, again_s = timed(bot.ingest, folder, COLLECTION)
    print("\n3. re-ingest, nothing changed (onnx-int8)")
    show("onnx-int8", again, again_s)
    checks.append(("re-ingest added no chunks", again.chunks_added == 0))
    checks.append((f"re-ingest found all {n} pages unchanged", again.files_unchanged == n))
    speedup = first_s / again_s
    print(f"  re-ingest speedup (first s ÷ re-ingest s): {speedup:.1f}x")

    # 4. Edit 10 pages, delete 5 others, ingest again (onnx-int8) ------------------------------------
    step = n // (EDITS + DELETES)
    picked = [files[i * step] for i in range(EDITS + DELETES)]  # spread over the manual
    for i, f in enumerate(picked[:EDITS]):
        html = f.read_text(encoding="utf-8", errors="replace")
        para = f"<p>Benchmark edit {i}: the value of setting bench_edit_{i} is 42.</p>"
        cut = html.lower().rfind("</body>")
        f.write_text(html[:cut] + para + html[cut:] if cut >= 0 else html + para, encoding="utf-8")
    for f in picked[EDITS:]:
        f.unlink()
    edited, edited_s = timed(bot.ingest, folder, COLLECTION)
    print(f"\n4. {EDITS} pages edited, {DELETES} deleted (onnx-int8)")
    show("onnx-int8", edited, edited_s)
    touched = (edited.chunks_added + edited.chunks_deleted) / max(edited.chunks_total, 1)
    edit_ratio = edited_s / first_s
    print(f"  files changed {edited.files_changed} (expect {EDITS}), removed {edited.files_removed} (expect {DELETES})")
    print(f"  chunks added {edited.chunks_added}, deleted {edited.chunks_deleted}, total {edited.chunks_total}")
    print(f"  seconds {edited_s:.2f}; ÷ first ingest's {first_s:.2f}s = {edit_ratio:.3f}")
    print(f"  chunks touched ((added + deleted) ÷ total): {touched:.3f}")
    check = bot.index.check(COLLECTION)
    print(
        f"  index check: consistent={check.consistent} (live {check.live}, missing in Chroma "
        f"{len(check.missing_in_chroma)}, orphans in Chroma {len(check.orphans_in_chroma)}, "
        f"unfinished in SQL {len(check.unfinished_in_sql)})"
    )
    checks.append((f"edit ingest: {EDITS} files changed", edited.files_changed == EDITS))
    checks.append((f"edit ingest: {DELETES} files removed", edited.files_removed == DELETES))
    checks.append(("edit ingest: no failed files", not edited.files_failed))
    checks.append(("index consistent after edits", check.consistent))
    checks.append(("chunks_total matches the index check", edited.chunks_total == check.live))

    print("\nchecks")
    for name, ok in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")

    summary: dict[str, Any] = {
        "pages": n,
        "questions": len(asked),
        "baseline_chunks": base_chunks,
        "baseline_chunks_per_s": round(base_rate, 2),
    }
    for backend, (report, seconds) in first.items():
        summary[f"{backend}_chunks"] = report.chunks_added
        summary[f"{backend}_chunks_per_s_ratio"] = round(report.chunks_added / seconds / base_rate, 3)
        summary[f"{backend}_time_ratio"] = round(base_s / seconds, 3)
    for name, q in quality.items():
        for metric, value in q.items():
            summary[f"{name}_{metric}"] = round(value, 3)
    summary.update(
        reingest_speedup=round(speedup, 2),
        edit_seconds_ratio=round(edit_ratio, 4),
        edit_chunks_touched=round(touched, 4),
        consistent=check.consistent,
        checks_failed=[name for name, ok in checks if not ok],
    )
    print("\n" + json.dumps(summary))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
