"""Retrieval and answer benchmark: each improvement of issue 7 against the pipeline a user assembles by hand.

Over the PostgreSQL 15 manual (Debian `postgresql-doc-15`) and the labelled questions of
benchmarks/postgres_questions.jsonl (each with a `kind`: plain, identifier, deep, howto,
unanswerable), in one run:

  hand-assembled   BSHTMLLoader → RecursiveCharacterTextSplitter(1000, 200) → HuggingFaceEmbeddings
                   → Chroma, top 4, every question answered (the LangChain tutorial)
  dense            this project, by meaning only, chunks as retrieved
  + keywords rrf   the SQL keyword index fused by reciprocal rank (the usual hybrid)
  + keywords score the keyword list fused with the cosine scores instead (the default)
  + identifiers    a third list: chunks holding every identifier the question names
  + source support each chunk raised by the next best chunks of its document
  + neighbours     each hit grown by its section's neighbouring chunks (off by default: no gain)
  + dedupe         near-duplicate passages dropped
  + abstention     the calibrated "documents do not say" thresholds (2-fold cross-validated:
                   thresholds chosen on one half of the questions, scored on the other)

Printed per configuration: hit@1 (overall and on identifier questions), MRR, unanswerable
declined, answerable wrongly declined, search p50/p95 (ms), and with --answers the bundled
model's answer accuracy on plain and on harder questions, both for the whole reply (which
ends with the quoted evidence sentence) and for the model's own words alone. Also the
"oracle" accuracy: the model handed a 1,000-character window of the page around the answer.

    python benchmarks/bench_retrieval.py [--answers] [--limit 40] [--state /tmp/bench-retrieval]
    python benchmarks/bench_retrieval.py --latency-only --state /tmp/bench-big --collection big
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.evals.qa import QAItem, is_correct, load_qa  # noqa: E402
from assistant.evals.retrieval import CALIBRATED, RetrievalCase, calibrate, run_cases, summarize  # noqa: E402

MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")
HARDER = ("identifier", "deep", "howto")
OFF = {"decline_confidence": 0.0}
RAW = {"neighbour_chunks": 0, "dedupe_overlap": 1.0, **OFF}
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {"retrieval_mode": "dense", "source_support": 0.0, **RAW}),
    (
        "+ keywords rrf",
        {"fusion": "rrf", "keyword_weight": 1.0, "identifier_weight": 0.0, "source_support": 0.0, **RAW},
    ),
    ("+ keywords score", {"identifier_weight": 0.0, "source_support": 0.0, **RAW}),
    ("+ identifiers", {"source_support": 0.0, **RAW}),
    ("+ source support", {**RAW}),
    ("+ neighbours", {"neighbour_chunks": 1, "dedupe_overlap": 1.0, **OFF}),
    ("+ dedupe", {"neighbour_chunks": 1, **OFF}),
]
# Steps whose answers are measured (the others do not change what reaches the prompt much,
# and each answered step costs ~2 s a question).
ANSWERED = {"dense", "+ source support", "+ neighbours", "+ dedupe"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def reply_parts(answer: str) -> tuple[str, str]:
    """(the model's words, the whole reply): the quoted evidence tail starts with a blank line and '>'."""
    return answer.split("\n\n>", 1)[0], answer


class HandAssembled:
    """The LangChain tutorial pipeline's retrieval and prompt, on the same model and embedder."""

    def __init__(self, work: Path, docs: Path) -> None:
        from langchain_chroma import Chroma
        from langchain_huggingface import HuggingFaceEmbeddings

        from retrievers.embedder import bundled_embedder_path

        embeddings = HuggingFaceEmbeddings(model_name=str(bundled_embedder_path()))
        folder = work / "hand-assembled"
        fresh = not folder.exists()
        self.store = Chroma(collection_name="manual", embedding_function=embeddings, persist_directory=str(folder))
        if fresh:
            from langchain_community.document_loaders import BSHTMLLoader
            from langchain_text_splitters import RecursiveCharacterTextSplitter

            pages = [
                BSHTMLLoader(str(f), bs_kwargs={"features": "html.parser"}).load()[0]
                for f in sorted(docs.glob("*.html"))
            ]
            for page in pages:
                page.metadata["source"] = Path(page.metadata["source"]).name
            chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
            for start in range(0, len(chunks), 2000):
                self.store.add_documents(chunks[start : start + 2000])
        self.llm: Any = None

    def sources(self, question: str, k: int = 10) -> list[str]:
        found = self.store.similarity_search(question, k=k)
        return list(dict.fromkeys(d.metadata["source"] for d in found))

    def answer(self, question: str) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        if self.llm is None:
            from langchain_community.chat_models import ChatLlamaCpp

            from assistant.llamacpp import bundled_gguf_path

            self.llm = ChatLlamaCpp(
                model_path=str(bundled_gguf_path()), n_ctx=2048, max_tokens=96, temperature=0, verbose=False
            )
        context = "\n\n".join(d.page_content for d in self.store.similarity_search(question, k=4))
        try:
            return str(
                self.llm.invoke(
                    [SystemMessage(f"Answer using this context:\n{context}"), HumanMessage(question)]
                ).content
            )
        except ValueError:  # four 1,000-character chunks can overflow the 2,048-token window
            short = context[:3000]
            return str(
                self.llm.invoke([SystemMessage(f"Answer using this context:\n{short}"), HumanMessage(question)]).content
            )


def oracle_answers(bot: Assistant, items: list[QAItem], docs: Path) -> list[bool]:
    """The bundled model handed a 1,000-character window of the source page around the answer."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from assistant.settings import DocumentSettings
    from chains.prompt import LOCAL_SYSTEM
    from retrievers.loaders import parse

    right = []
    for item in items:
        path = docs / str(item.source)
        page = " ".join(
            " ".join(d.page_content.split()) for d in parse("html", path, path.read_bytes(), DocumentSettings())
        )
        lowered = page.lower()
        at = min((lowered.find(a.lower()) for a in item.answers if a.lower() in lowered), default=0)
        window = page[max(0, at - 500) : at + 500]
        reply = bot.llm.invoke(
            [SystemMessage(f"{LOCAL_SYSTEM}\n\nDocuments:\n{window}"), HumanMessage(item.question)], stop=["\n\n"]
        )
        right.append(is_correct(str(reply.content), item.answers))
    return right


def retrieval_row(cases: list[RetrievalCase]) -> dict[str, Any]:
    report = summarize("", cases, {})
    ident = [c for c in cases if c.kind == "identifier"]
    return {
        "hit@1": report.metrics["hit@1"],
        "hit@1 identifiers": round(sum(c.rank == 1 for c in ident) / len(ident), 3) if ident else None,
        "mrr": report.metrics["mrr"],
        "declined unanswerable": report.abstention["recall"],
        "wrongly declined": report.abstention["false_abstention_rate"],
        "p50 ms": report.latency_ms["p50"],
        "p95 ms": report.latency_ms["p95"],
    }


def cross_validated(
    cases: list[RetrievalCase], bot: Assistant, folds: int = 2
) -> tuple[list[RetrievalCase], dict[str, float]]:
    """Each case declined or not by thresholds calibrated on the other folds; and thresholds from all cases."""
    order = list(range(len(cases)))
    random.Random(7).shuffle(order)
    decided: dict[int, RetrievalCase] = {}
    for fold in range(folds):
        held = {i for n, i in enumerate(order) if n % folds == fold}
        chosen = calibrate([c for i, c in enumerate(cases) if i not in held])["decline_confidence"]
        for i in held:
            value = float(cases[i].signals.get("confidence_before_draft") or 0.0)
            declined = cases[i].signals.get("best_score") is None or value < chosen
            decided[i] = replace(cases[i], declined=declined, reason=f"confidence {value:.2f}" if declined else "")
    return [decided[i] for i in range(len(cases))], calibrate(cases)


def answer_row(bot: Assistant, collection: str, items: list[QAItem], tag: str) -> dict[str, Any]:
    groups: dict[str, list[tuple[bool, bool]]] = {"plain": [], "harder": []}
    for n, item in enumerate(i for i in items if i.answers):
        reply = bot.ask(item.question, user_id="bench", session_id=f"{tag}-{n}", collection=collection)
        own, whole = reply_parts(reply.answer) if reply.route != "abstain" else ("", "")
        group = "plain" if item.kind == "plain" else "harder"
        groups[group].append((is_correct(own, item.answers), is_correct(whole, item.answers)))
    row = {}
    for group, marks in groups.items():
        if marks:
            row[f"{group} own words"] = round(sum(m[0] for m in marks) / len(marks), 3)
            row[f"{group} with quote"] = round(sum(m[1] for m in marks) / len(marks), 3)
    return row


def latency(bot: Assistant, collection: str, questions: list[str], mode: str) -> dict[str, float]:
    options = bot.index.retrieval_settings.model_copy(update={"retrieval_mode": mode})
    bot.index.retrieve(collection, questions[0], bot.settings.top_k, options)
    times = []
    for q in questions:
        started = time.perf_counter()
        bot.index.retrieve(collection, q, bot.settings.top_k, options)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": round(percentile(times, 0.5), 1), "p95": round(percentile(times, 0.95), 1)}


def hand_assembled_row(state: Path, docs: Path, items: list[QAItem], answers: bool) -> dict[str, Any]:
    base = HandAssembled(state, docs)
    times, cases = [], []
    base.sources(items[0].question)
    for item in items:
        started = time.perf_counter()
        found = base.sources(item.question)
        times.append((time.perf_counter() - started) * 1000)
        rank = found.index(item.source) + 1 if item.source in found else None
        cases.append(
            RetrievalCase(
                item.question, item.kind or "", item.source, bool(item.answers), found, rank, {}, False, "", times[-1]
            )
        )
    row = retrieval_row(cases)
    if answers:
        marks: dict[str, list[bool]] = {"plain": [], "harder": []}
        for item in (i for i in items if i.answers):
            marks["plain" if item.kind == "plain" else "harder"].append(
                is_correct(base.answer(item.question), item.answers)
            )
        row.update({f"{g} own words": round(sum(m) / len(m), 3) for g, m in marks.items() if m})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=ROOT / "benchmarks" / "postgres_questions.jsonl")
    parser.add_argument("--docs", type=Path, default=MANUAL)
    parser.add_argument("--state", type=Path, default=Path("/tmp/bench-retrieval"))
    parser.add_argument("--collection", default="pgdocs")
    parser.add_argument("--limit", type=int, help="Only the first N questions.")
    parser.add_argument("--answers", action="store_true", help="Also measure answer accuracy (slow: ~2 s a question).")
    parser.add_argument("--latency-only", action="store_true", help="Only search latency, dense and hybrid.")
    parser.add_argument(
        "--only", action="append", help="Only these configurations (repeatable), e.g. --only '+ dedupe'; no baseline."
    )
    parser.add_argument("--output", type=Path, default=Path("/tmp/bench-retrieval.json"))
    args = parser.parse_args()
    items = load_qa(args.questions)[: args.limit]
    questions = [i.question for i in items]

    if args.latency_only:
        bot = Assistant.from_settings(Settings(data_dir=args.state))
        chunks = bot.describe_collection(args.collection).chunks
        for mode in ("dense", "hybrid"):
            print(f"{args.collection} ({chunks} chunks) {mode:7s} {latency(bot, args.collection, questions, mode)}")
        return

    if not args.docs.is_dir():
        sys.exit(f"{args.docs} not found: apt-get install postgresql-doc-15")
    bot = Assistant.from_settings(Settings(data_dir=args.state))
    report = bot.ingest(args.docs, args.collection)
    print(f"{args.collection}: {report.chunks_total} chunks from {args.docs}; {len(items)} questions")
    results: dict[str, dict[str, Any]] = {}

    if args.only:
        if "hand-assembled" in args.only:
            print("hand-assembled", hand_assembled_row(args.state, args.docs, items, args.answers), flush=True)
        if "oracle" in args.only:
            bot = Assistant.from_settings(Settings(data_dir=args.state))
            answerable = [i for i in items if i.answers]
            oracle = oracle_answers(bot, answerable, args.docs)
            for group in ("plain", "harder"):
                marks = [
                    r for r, i in zip(oracle, answerable, strict=True) if (i.kind == "plain") == (group == "plain")
                ]
                print(f"oracle window {group} own words {statistics.fmean(marks):.3f}", flush=True)
        for name, overrides in STEPS:
            if name in args.only:
                step = Assistant.from_settings(Settings(data_dir=args.state, **overrides))
                row = retrieval_row(list(run_cases(step, args.collection, items)))
                if args.answers:
                    row.update(answer_row(step, args.collection, items, f"{name}-{time.time()}"))
                print(name, row, flush=True)
        return

    results["hand-assembled"] = hand_assembled_row(args.state, args.docs, items, args.answers)

    last: Assistant | None = None
    for name, overrides in STEPS:
        step = Assistant.from_settings(Settings(data_dir=args.state, **overrides))
        results[name] = retrieval_row(list(run_cases(step, args.collection, items)))
        if args.answers and name in ANSWERED:
            results[name].update(answer_row(step, args.collection, items, name))
        print(name, results[name], flush=True)
        last = step
    assert last is not None
    cases = list(run_cases(last, args.collection, items))
    validated, thresholds = cross_validated(cases, last)
    results["+ abstention"] = retrieval_row(validated)
    print("thresholds calibrated on every question:", thresholds)
    if args.answers:
        calibrated = Assistant.from_settings(Settings(data_dir=args.state, **thresholds))
        results["+ abstention"].update(answer_row(calibrated, args.collection, items, "abstention"))
        answerable = [i for i in items if i.answers]
        oracle = oracle_answers(last, answerable, args.docs)
        results["oracle window"] = {
            f"{g} own words": round(
                statistics.fmean(
                    r for r, i in zip(oracle, answerable, strict=True) if (i.kind == "plain") == (g == "plain")
                ),
                3,
            )
            for g in ("plain", "harder")
        }

    columns = sorted(
        {c for r in results.values() for c in r},
        key=lambda c: list(next(iter(results.values()))).index(c) if c in next(iter(results.values())) else 99,
    )
    print(f"\n{'configuration':16}" + "".join(f"{c:>22}" for c in columns))
    for name, row in results.items():
        print(f"{name:16}" + "".join(f"{'' if row.get(c) is None else row[c]:>22}" for c in columns))
    baseline = results["hand-assembled"]
    best = results["+ abstention"]
    print(f"\nhit@1 ratio, project ÷ hand-assembled: {best['hit@1'] / baseline['hit@1']:.2f}x")
    args.output.write_text(json.dumps({"results": results, "thresholds": thresholds}, indent=2))
    print(f"JSON: {args.output}")
    _ = CALIBRATED


if __name__ == "__main__":
    main()
