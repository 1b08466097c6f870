"""Benchmark document summaries (issue 22): are the sentences backed, and how close to a reference?

For each of 10 documents (the project's handbook-like samples and real Debian
documentation: postgresql-doc-15 and git-doc HTML), parsed by the project's parsers
into sections, it summarises with the real local model and embedder and prints:

- facts: the share of summary sentences whose facts appear in the cited section,
  checked independently of chains.verify (its own tokenizer, stop words and prefix
  stemming): every number of the sentence occurs in the section, and at least 85 % of
  its content words do. Target >= 0.95.
- ROUGE-L F1 (rouge-score, stemmed) against the reference summaries written by hand,
  before any output was seen, in benchmarks/data/summaries/references.jsonl; with two
  baselines from the same run: the document's first 3 sentences (lead-3) and its first
  sentences within the same token budget (lead-budget), and the ratios to them.
- the largest prompt sent (tokens as the model counted them, plus the answer cap)
  against the 2,048-token window.

Three documents (held_out in references.jsonl) were kept out of any tuning and are
reported separately. Run by hand: `.venv/bin/python benchmarks/bench_summaries.py [--only ID]`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCES = ROOT / "benchmarks" / "data" / "summaries" / "references.jsonl"

_WORD = re.compile(r"[a-z0-9][a-z0-9_@{}\-]*[a-z0-9}]|[a-z0-9]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# Independent of retrievers.words.STOP_WORDS on purpose: a separate check.
_STOP = frozenset(
    """a an the and or but if then else of to in on at by for with from into onto over under as is are was were be
    been being it its this that these those there their they them he she his her we our you your i me my not no
    nor so than too very can could may might must shall should will would do does did done has have had having
    also such each every any all some most more much many other only own same both either neither which who whom
    whose what when where why how while about above after before between during through up down out off again
    further once here just one ones""".split()
)


def fact_supported(sentence: str, section: str) -> bool:
    """Every number of the sentence is in the section, and at least 85 % of its content words are
    (a word counts when the section has a word sharing its first max(4, len-2) letters)."""
    text = section.lower()
    numbers = _NUMBER.findall(sentence)
    if any(not re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", text) for n in numbers):
        return False
    words = [w for w in _WORD.findall(sentence.lower()) if w not in _STOP and not _NUMBER.fullmatch(w)]
    if not words:
        return False
    pool = set(_WORD.findall(text))
    stems = {w[:k] for w in pool for k in range(4, len(w) + 1)}
    found = sum(1 for w in words if w in pool or w[: max(4, len(w) - 2)] in stems)
    return found / len(words) >= 0.85


def load_sections(path: Path) -> list[Any]:
    from assistant.settings import Settings
    from chains.document_summary import SummarySection
    from retrievers.loaders import parse

    options = Settings().documents
    documents = parse(path.suffix.lstrip("."), path, path.read_bytes(), options)
    sections = []
    for document in documents:
        location = str(document.metadata.get("location") or "")
        citation = f"{path.name} › {location}" if location else path.name
        sections.append(SummarySection(len(sections), citation, document.page_content))
    return sections


def lead(sections: list[Any], count_tokens: Any, *, sentences_wanted: int = 0, budget: int = 0) -> str:
    from retrievers.words import sentences

    kept: list[str] = []
    for section in sections:
        for sentence in sentences(section.text):
            if len(sentence.split()) < 4:
                continue
            if sentences_wanted and len(kept) >= sentences_wanted:
                return " ".join(kept)
            if budget and count_tokens(" ".join([*kept, sentence])) > budget:
                return " ".join(kept)
            kept.append(sentence)
    return " ".join(kept)


def recording(llm: Any) -> Any:
    """The model, with each call's prompt tokens (as the model counted them) and answer cap kept."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.outputs import ChatResult
    from pydantic import Field

    class Recording(BaseChatModel):
        inner: Any
        calls: list[tuple[int, int]] = Field(default_factory=list)

        @property
        def _llm_type(self) -> str:
            return "recording"

        @property
        def model_name(self) -> str:
            return str(self.inner.model_name)

        def count_tokens(self, text: str) -> int:
            return int(self.inner.count_tokens(text))

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
            result: ChatResult = self.inner._generate(messages, stop=stop, **kwargs)
            usage = getattr(result.generations[0].message, "usage_metadata", None) or {}
            self.calls.append((int(usage.get("input_tokens", 0)), int(kwargs.get("max_tokens") or 0)))
            return result

    return Recording(inner=llm, calls=[])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", help="document id(s) to run")
    parser.add_argument("--show", action="store_true", help="print each summary")
    args = parser.parse_args()

    from rouge_score import rouge_scorer

    from assistant.capabilities import token_counter
    from assistant.factory import build_local_llm
    from assistant.settings import Settings
    from chains.document_summary import DocumentSummarizer
    from retrievers.embedder import load_embedder

    settings = Settings()
    llm = recording(build_local_llm(settings))
    count = token_counter(llm)
    embeddings = load_embedder(settings.documents.embedder_spec, cache_dir=settings.documents.embedding_cache_dir)
    summarizer = DocumentSummarizer(llm, embeddings, count, context_tokens=settings.llm_context_tokens)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    references = [json.loads(line) for line in REFERENCES.read_text().splitlines() if line.strip()]
    if args.only:
        references = [r for r in references if r["id"] in args.only]

    rows = []
    print(
        f"{'document':22} {'corpus':8} {'held':4} {'sect':>4} {'sent':>4} {'facts':>5} {'verif':>5} "
        f"{'extr':>4} {'R-L':>5} {'lead3':>5} {'leadB':>5} {'x3':>5} {'xB':>5} {'prompt':>6} {'s':>5}"
    )
    for ref in references:
        path = Path(ref["path"]) if ref["path"].startswith("/") else ROOT / ref["path"]
        if not path.exists():
            print(f"{ref['id']}: {path} is missing (install postgresql-doc-15 / git-doc)")
            continue
        sections = load_sections(path)
        by_index = {s.index: s for s in sections}
        llm.calls.clear()
        started = time.perf_counter()
        summary = summarizer.summarize(sections)
        seconds = time.perf_counter() - started
        shown = summary.sentences
        facts = [fact_supported(s.text, by_index[s.section].text) for s in shown]
        text = " ".join(s.text for s in shown)
        rouge = scorer.score(ref["reference"], text)["rougeL"].fmeasure
        lead3 = scorer.score(ref["reference"], lead(sections, count, sentences_wanted=3))["rougeL"].fmeasure
        lead_b = scorer.score(ref["reference"], lead(sections, count, budget=summarizer.summary_tokens))[
            "rougeL"
        ].fmeasure
        prompt = max((p + m for p, m in llm.calls), default=0)
        row = {
            "id": ref["id"],
            "corpus": ref["corpus"],
            "held_out": ref["held_out"],
            "sections": len(sections),
            "sentences": len(shown),
            "facts": sum(facts),
            "verified": sum(s.supported for s in shown),
            "extractive": sum(s.model == "extractive" for s in shown),
            "rouge": rouge,
            "lead3": lead3,
            "lead_budget": lead_b,
            "prompt": prompt,
            "seconds": seconds,
        }
        rows.append(row)
        print(
            f"{row['id']:22} {row['corpus']:8} {'yes' if row['held_out'] else '':4} {row['sections']:4} "
            f"{row['sentences']:4} {_share(row['facts'], row['sentences']):5.2f} "
            f"{_share(row['verified'], row['sentences']):5.2f} {row['extractive']:4} {rouge:5.3f} {lead3:5.3f} "
            f"{lead_b:5.3f} {_ratio(rouge, lead3):5.2f} {_ratio(rouge, lead_b):5.2f} {prompt:6} {seconds:5.0f}",
            flush=True,
        )
        if args.show:
            print(summary.text())
            for s, ok in zip(shown, facts, strict=True):
                if not ok:
                    print(f"   NOT IN SECTION: {s.text!r} ({s.citation})")
            print()
    for label, group in (
        ("tuned (7)", [r for r in rows if not r["held_out"]]),
        ("held out (3)", [r for r in rows if r["held_out"]]),
        ("all", rows),
    ):
        if not group:
            continue
        sentences = sum(r["sentences"] for r in group)
        rouge = mean(r["rouge"] for r in group)
        lead3 = mean(r["lead3"] for r in group)
        lead_b = mean(r["lead_budget"] for r in group)
        print(
            f"{label:13} facts in cited section {_share(sum(r['facts'] for r in group), sentences):.3f} "
            f"({sum(r['facts'] for r in group)}/{sentences}), verifier-supported "
            f"{_share(sum(r['verified'] for r in group), sentences):.3f}, extractive "
            f"{_share(sum(r['extractive'] for r in group), sentences):.2f}; ROUGE-L {rouge:.3f} vs lead-3 {lead3:.3f} "
            f"(x{_ratio(rouge, lead3):.2f}) and lead-{summarizer.summary_tokens}-tokens {lead_b:.3f} "
            f"(x{_ratio(rouge, lead_b):.2f}); largest prompt+answer {max(r['prompt'] for r in group)} tokens "
            f"of {settings.llm_context_tokens}; {mean(r['seconds'] for r in group):.0f} s a document"
        )


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


if __name__ == "__main__":
    main()
