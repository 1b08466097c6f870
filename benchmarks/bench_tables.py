"""Cell questions over real PDF tables: what reading tables as tables brings.

Tables: real ones from the PostgreSQL 15 manual (Debian's postgresql-doc-15, HTML), each
rendered into a PDF with a real ruled table (fpdf2), its caption above it and a line of text.
Questions: 30 cell questions made from the tables by a seeded draw ("What is the storage
size of bigint?" -> "8 bytes"): a row's first cell names it, one other cell is the answer.
The first 15 are the tuning part; the last 15 are held out (not looked at while tuning).

Two collections over the same PDFs, in one run, same embedder and model:
  tables:    retrievers.pdf (pdfplumber tables: each row with its header, split by rows)
  baseline:  the PDF parser before it (pypdf, a "page N" section of running text per page)

Measured, per part and in all:
  hit@1     the first passage searched (Assistant.search) is from the right PDF and holds the
            row: its first cell and the answer cell, in one chunk;
  accuracy  the answer cell appears in the reply of the bundled local model (Assistant.ask);
  evidence  the answer cell appears in the evidence quoted under the reply;
and the ingest seconds of each collection.

Run from the repository root (about 15 minutes on 2 cores; --part tune for the tuning half,
--no-ask for retrieval only):

    .venv/bin/python benchmarks/bench_tables.py [--part all|tune|held] [--no-ask]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANUAL = Path("/usr/share/doc/postgresql-doc-15/html")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# (page of the manual, start of the table's caption): tables whose rows are named by their
# first cell, with short cells, from several chapters.
TABLES = [
    ("datatype-numeric.html", "Table 8.2."),
    ("datatype.html", "Table 8.1."),
    ("datatype-datetime.html", "Table 8.9."),
    ("datatype-oid.html", "Table 8.26."),
    ("limits.html", "PostgreSQL Limitations"),
    ("multibyte.html", "PostgreSQL Character Sets"),
    ("xfunc-c.html", "Table 38.2."),
    ("ecpg-variables.html", "Table 36.1."),
    ("runtime-config-logging.html", "Table 20.3."),
    ("ddl-priv.html", "Table 5.1."),
    ("catalog-pg-type.html", "Table 53.65."),
    ("errcodes-appendix.html", "PostgreSQL Error Codes"),
]
QUESTIONS = 30
TUNE = 15  # the first TUNE questions tune; the rest are held out
SEED = 22
MAX_ANSWER = 32  # characters: an answer cell a reply can hold verbatim


@dataclass(frozen=True)
class Table:
    pdf: str
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Question:
    text: str
    pdf: str
    key: str
    answer: str


def norm(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").replace("\u200b", "").split()).casefold()


def says(text: str, value: str) -> bool:
    """Whether `text` holds `value` as words of its own ("t" is not in "the")."""
    return re.search(rf"(?<!\w){re.escape(norm(value))}(?!\w)", norm(text)) is not None


def load_tables() -> list[Table]:
    from bs4 import BeautifulSoup

    from retrievers.html import _caption, _grid

    found = []
    for page, caption in TABLES:
        soup = BeautifulSoup((MANUAL / page).read_text(encoding="utf-8"), "lxml")
        for element in soup.find_all("table"):
            if _caption(element).startswith(caption) and (grid := _grid(element)) is not None and grid[0]:
                name = Path(page).stem + ".pdf"
                found.append(Table(name, _caption(element), grid[0], grid[1]))
                break
        else:
            raise SystemExit(f"{page}: no table captioned {caption!r} (is postgresql-doc-15 installed?)")
    return found


def make_questions(tables: list[Table]) -> list[Question]:
    """A seeded draw of cell questions, a few per table in turn; each key names one row only."""
    keys: dict[str, int] = {}
    for table in tables:
        for row in table.rows:
            keys[norm(row[0])] = keys.get(norm(row[0]), 0) + 1
    rng = random.Random(SEED)
    per_table: list[list[Question]] = []
    for table in tables:
        candidates = []
        for row in table.rows:
            key = row[0]
            if keys[norm(key)] != 1 or not key or len(key) > 40:
                continue
            for column, value in list(zip(table.header, row, strict=False))[1:]:
                what = norm(column) if not column.isupper() else column
                named = key if table.header[0].casefold() in ("name", "item") else f"{table.header[0]} {key}"
                text = f"What is the {what} of {named}?"
                # An answer of one character, a yes/no, or one the question already says
                # would be "found" in any reply.
                if 2 <= len(value) <= MAX_ANSWER and norm(value) not in ("yes", "no") and not says(text, value):
                    candidates.append(Question(text, table.pdf, key, value))
        rng.shuffle(candidates)
        per_table.append(candidates)
    questions: list[Question] = []
    while len(questions) < QUESTIONS and any(per_table):
        for candidates in per_table:
            if candidates and len(questions) < QUESTIONS:
                questions.append(candidates.pop())
    rng.shuffle(questions)
    return questions


def render(table: Table, path: Path) -> None:
    from fpdf import FPDF

    wide = len(table.header) >= 5
    pdf = FPDF(orientation="L" if wide else "P")
    pdf.add_font("dejavu", "", str(FONT))
    pdf.add_font("dejavu", "B", str(FONT.with_name("DejaVuSans-Bold.ttf")))
    pdf.set_font("dejavu", size=8)
    pdf.add_page()
    pdf.multi_cell(0, 5, f"PostgreSQL 15 documentation: {table.caption}.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.cell(0, 6, table.caption, new_x="LMARGIN", new_y="NEXT")
    longest = [
        max(len(row[i]) if i < len(row) else 0 for row in [table.header, *table.rows]) for i in range(len(table.header))
    ]
    widths = tuple(max(4.0, min(n, 60) ** 0.7) for n in longest)
    with pdf.table(col_widths=widths, text_align="LEFT") as grid:
        for cells in [table.header, *table.rows]:
            row = grid.row()
            for i in range(len(table.header)):
                row.cell(cells[i] if i < len(cells) else "")
    pdf.output(str(path))


def parse_pdf_before(path: Path, data: bytes, options: Any, notes: list[str]) -> list[Any]:
    """The PDF parser before table extraction (git show dda3159:retrievers/pdf.py), in short."""
    from pypdf import PdfReader

    from retrievers.sections import section

    reader = PdfReader(io.BytesIO(data))
    pages = [page.extract_text() or "" for page in reader.pages]
    return [section(t.strip(), f"page {n}", page=n) for n, t in enumerate(pages, start=1) if t.strip()]


def holds_row(text: str, question: Question) -> bool:
    return norm(question.key) in norm(text) and says(text, question.answer)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from assistant import Assistant, Settings
    from retrievers import loaders

    tables = load_tables()
    questions = make_questions(tables)
    parts = {"tune": questions[:TUNE], "held": questions[TUNE:]}
    chosen = questions if args.part == "all" else parts[args.part]
    work = Path(tempfile.mkdtemp(prefix="bench-tables-"))
    folder = work / "pdfs"
    folder.mkdir()
    for table in tables:
        render(table, folder / table.pdf)
    print(f"{len(tables)} tables, {sum(len(t.rows) for t in tables)} rows, rendered into PDFs in {folder}")
    bot = Assistant.from_settings(Settings(data_dir=work / "state"))
    seconds: dict[str, float] = {}
    new_parser = loaders.PARSERS["pdf"]
    for name, parser in (("tables", new_parser), ("baseline", parse_pdf_before)):
        loaders.PARSERS["pdf"] = parser
        try:
            start = time.perf_counter()
            report = bot.ingest(folder, collection=name)
            seconds[name] = time.perf_counter() - start
        finally:
            loaders.PARSERS["pdf"] = new_parser
        assert not report.files_failed, report.files_failed
    results: dict[str, dict[str, list[bool]]] = {name: {"hit": [], "answer": [], "evidence": []} for name in seconds}
    marks = []
    for number, question in enumerate(chosen):
        for name, scores in results.items():
            top = bot.search(question.text, collection=name, k=5)
            hit = bool(top) and top[0].metadata["source"] == question.pdf and holds_row(top[0].page_content, question)
            scores["hit"].append(hit)
            if not args.no_ask:
                reply = bot.ask(question.text, user_id="bench", session_id=f"{name}-{number}", collection=name)
                scores["answer"].append(says(reply.answer, question.answer))
                scores["evidence"].append(says(reply.evidence, question.answer))
        print(f"question {number + 1}/{len(chosen)} done", file=sys.stderr, flush=True)
        if args.part != "held" and args.show and number < TUNE:
            marks.append(
                f"{question.text} -> {question.answer}: "
                + ", ".join(
                    f"{n} hit={int(s['hit'][-1])}" + (f" ans={int(s['answer'][-1])}" if s["answer"] else "")
                    for n, s in results.items()
                )
            )
    for line in marks:
        print(line)
    summary: dict[str, Any] = {"questions": len(chosen), "ingest_s": {k: round(v, 1) for k, v in seconds.items()}}
    split = (
        {"all": (0, len(chosen))}
        if args.part != "all"
        else {"tune": (0, TUNE), "held": (TUNE, len(chosen)), "all": (0, len(chosen))}
    )
    for part, (a, b) in split.items():
        part_name = args.part if args.part != "all" and part == "all" else part
        for name, scores in results.items():
            for metric, values in scores.items():
                if values[a:b]:
                    summary[f"{part_name}.{name}.{metric}"] = round(sum(values[a:b]) / len(values[a:b]), 3)
    print(f"{'part':6} {'parser':9} {'hit@1':>6} {'answer':>7} {'evidence':>9}")
    for part in split:
        part_name = args.part if args.part != "all" and part == "all" else part
        for name in results:
            cells = [summary.get(f"{part_name}.{name}.{m}") for m in ("hit", "answer", "evidence")]
            print(
                f"{part_name:6} {name:9} "
                + " ".join(f"{'-' if c is None else c:>{w}}" for c, w in zip(cells, (6, 7, 9), strict=True))
            )
    for metric in ("hit", "answer"):
        new, old = (
            summary.get(f"{args.part if args.part != 'all' else 'all'}.tables.{metric}"),
            summary.get(f"{args.part if args.part != 'all' else 'all'}.baseline.{metric}"),
        )
        if new is not None and old:
            summary[f"ratio.{metric}"] = round(new / old, 2)
    print(f"ingest seconds: tables {seconds['tables']:.1f}, baseline {seconds['baseline']:.1f}")
    print(json.dumps(summary))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "tune", "held"), default="all")
    parser.add_argument("--no-ask", action="store_true", help="retrieval only (no model)")
    parser.add_argument("--show", action="store_true", help="print each tuning question's outcome")
    parser.add_argument("--list", action="store_true", help="print the tuning questions and stop")
    args = parser.parse_args()
    if args.list:
        for question in make_questions(load_tables())[:TUNE]:
            print(f"{question.pdf}: {question.text} -> {question.answer}")
        return
    run(args)


if __name__ == "__main__":
    main()
