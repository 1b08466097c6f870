"""This project against the pipeline a user assembles by hand from LangChain's tutorial pieces.

Same documents, same questions, same bundled GGUF model and embedder, one run:
  hand-assembled: BeautifulSoup/PyPDF/Text loaders → RecursiveCharacterTextSplitter(1000, 200)
                  → HuggingFaceEmbeddings → Chroma.from_documents → ChatLlamaCpp → SQLChatMessageHistory
  this project:   Assistant.ingest / Assistant.ask
Prints ratios (project ÷ baseline for rates, baseline ÷ project for times), never
absolute claims: the machines are noisy. Run by hand:

    .venv/bin/python benchmarks/bench_pipeline.py                      # the sample handbook
    .venv/bin/python benchmarks/bench_pipeline.py --corpus /usr/share/doc/postgresql-doc-15/html --limit 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]


def load_questions(path: Path, limit: int) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["question"] for r in rows if r.get("source")][:limit]


def corpus_files(folder: Path, limit: int | None) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in {".md", ".txt", ".html", ".htm", ".pdf"})
    return files[:limit] if limit else files


class HandAssembled:
    """The LangChain tutorial pipeline, piece by piece."""

    def __init__(self, workdir: Path) -> None:
        from langchain_community.chat_models import ChatLlamaCpp
        from langchain_huggingface import HuggingFaceEmbeddings

        from assistant.llamacpp import bundled_gguf_path
        from retrievers.embedder import bundled_embedder_path

        self.workdir = workdir
        self.embeddings = HuggingFaceEmbeddings(model_name=str(bundled_embedder_path()))
        self.llm = ChatLlamaCpp(
            model_path=str(bundled_gguf_path()), n_ctx=2048, max_tokens=96, temperature=0, verbose=False
        )
        self.store = None

    def load(self, files: list[Path]) -> list:
        from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader

        docs = []
        for f in files:
            if f.suffix in (".html", ".htm"):
                loader = BSHTMLLoader(str(f), bs_kwargs={"features": "html.parser"})
            else:
                loader = PyPDFLoader(str(f)) if f.suffix == ".pdf" else TextLoader(str(f))
            docs.extend(loader.load())
        return docs

    def index(self, files: list[Path]) -> int:
        from langchain_chroma import Chroma
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(self.load(files))
        self.store = Chroma.from_documents(chunks, self.embeddings, persist_directory=str(self.workdir / "chroma"))
        return len(chunks)

    def retrieve(self, question: str) -> list:
        return self.store.as_retriever(search_kwargs={"k": 4}).invoke(question)

    def turn(self, question: str, session: str) -> str:
        from langchain_community.chat_message_histories import SQLChatMessageHistory
        from langchain_core.messages import HumanMessage, SystemMessage

        history = SQLChatMessageHistory(session_id=session, connection=f"sqlite:///{self.workdir / 'chat.db'}")
        docs = self.retrieve(question)
        context = "\n\n".join(d.page_content for d in docs)
        messages = [
            SystemMessage(f"Answer using this context:\n{context}"),
            *history.messages[-4:],
            HumanMessage(question),
        ]
        try:
            answer = self.llm.invoke(messages).content
        except ValueError:  # four 1,000-character chunks can overflow a 2,048-token window
            messages = [SystemMessage(f"Answer using this context:\n{context[:3000]}"), HumanMessage(question)]
            answer = self.llm.invoke(messages).content
        history.add_user_message(question)
        history.add_ai_message(answer)
        return str(answer)


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "handbook")
    parser.add_argument("--questions", type=Path, default=ROOT / "data" / "handbook_qa.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    parser.add_argument("--turns", type=int, default=8, help="answered turns to time")
    args = parser.parse_args()

    from assistant import Assistant, Settings

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    files = corpus_files(args.corpus, args.limit)
    corpus = work / "corpus"
    for f in files:
        target = corpus / f.relative_to(args.corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    questions = load_questions(args.questions, 50)
    print(f"corpus: {len(files)} files from {args.corpus}; {len(questions)} questions")

    ours = Assistant.from_settings(Settings(data_dir=work / "ours"))
    ours.index.embedders.default().embed_query("warm up")  # both sides start with a loaded embedder
    base = HandAssembled(work / "base")
    base.embeddings.embed_query("warm up")

    base_chunks, base_index_s = timed(base.index, list(corpus.rglob("*.*")))
    report, our_index_s = timed(ours.ingest, corpus, "bench")
    _, base_reindex_s = timed(base.index, list(corpus.rglob("*.*")))  # from_documents adds them all again
    again, our_reindex_s = timed(ours.ingest, corpus, "bench")
    assert again.chunks_added == 0

    def retrieval_ms(fn) -> float:  # type: ignore[no-untyped-def]
        fn(questions[0])
        times = [timed(fn, q)[1] * 1000 for q in questions]
        return statistics.median(times)

    base_ret = retrieval_ms(base.retrieve)
    our_ret = retrieval_ms(ours.retriever("bench").search)

    turns = questions[: args.turns]
    base.turn(turns[0], "warm")
    ours.ask(turns[0], session_id="warm", collection="bench")
    base_turn = statistics.mean(timed(base.turn, q, "bench")[1] for q in turns)
    our_turn = statistics.mean(
        timed(lambda q: ours.ask(q, session_id="bench", collection="bench"), q)[1] for q in turns
    )

    rows = [
        ("chunks indexed per second", report.chunks_added / our_index_s, base_chunks / base_index_s, "higher"),
        ("re-ingest unchanged corpus (s)", our_reindex_s, base_reindex_s, "lower"),
        ("retrieval per query, median (ms)", our_ret, base_ret, "lower"),
        ("seconds per answered turn", our_turn, base_turn, "lower"),
    ]
    print(
        f"chunks: project {report.chunks_added} (≤256 embedder tokens each), baseline {base_chunks} "
        f"(1,000 characters each; the baseline's re-ingest added {base_chunks} duplicates)"
    )
    print(f"{'metric':36} {'project':>10} {'baseline':>10} {'ratio':>8}")
    for name, mine, theirs, better in rows:
        ratio = mine / theirs if better == "higher" else theirs / mine
        print(f"{name:36} {mine:10.3f} {theirs:10.3f} {ratio:7.2f}x")
    print("ratio > 1 means the project is better (faster or higher throughput).")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
