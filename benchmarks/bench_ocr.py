"""OCR speed and accuracy on scanned pages made from known text, and the ingest time of a
50-page scanned PDF against the same pages with a text layer.

The text is real legal prose from Debian's base-files (/usr/share/common-licenses: GPL-3,
GPL-2, LGPL-2.1, MPL-2.0, Apache-2.0), laid out as A4 pages in 12 pt DejaVu Serif and
"scanned": drawn in grayscale at 300 dpi and saved by Pillow as an image-only PDF (its
pages JPEG-compressed, as scanners write them). The same page texts are written by fpdf2
into a PDF with a text layer.

Measured, in one run on the same pages:
  1. OCR through retrievers.ocr.ocr_pdf_pages (pypdfium2 render at `--dpi`, Tesseract
     eng) on the first `--pages` pages: seconds per page, characters per second (characters
     of the known text / OCR seconds), Tesseract's CPU seconds per page (steadier than wall
     time on a shared machine), and word accuracy = 1 - word error rate (word-level
     Levenshtein distance / words of the known text), strict (exact words) and normalised
     (lowercase, punctuation dropped);
  2. Assistant.ingest of the `--scan-pages`-page scanned PDF and of the text-layer PDF of the
     same pages (fresh data dir, embedder loaded before any timing): seconds, the report's OCR
     s/page, and the ratio scanned / text.

Ratios matter more than absolute numbers: the machine is shared and noisy. A one-line JSON
summary ends the output. Run from the repository root:

    .venv/bin/python benchmarks/bench_ocr.py [--pages 10] [--scan-pages 50] [--dpi 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LICENSES = Path("/usr/share/common-licenses")
SOURCES = ("GPL-3", "GPL-2", "LGPL-2.1", "MPL-2.0", "Apache-2.0")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"
SCAN_DPI = 300
A4_PX = (2480, 3508)  # at 300 dpi
MARGIN_PX = 240
FONT_PT = 12
LINE_SPACING = 1.3


def corpus() -> list[str]:
    """Paragraphs of the licence texts, whitespace collapsed, in order."""
    paragraphs: list[str] = []
    for name in SOURCES:
        text = (LICENSES / name).read_text(encoding="utf-8", errors="replace")
        paragraphs += [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    return paragraphs


def layout(count: int) -> list[list[str]]:
    """`count` pages of lines, wrapped to the text width; the corpus is repeated if needed."""
    from PIL import ImageFont

    font = ImageFont.truetype(FONT, round(FONT_PT * SCAN_DPI / 72))
    width = A4_PX[0] - 2 * MARGIN_PX
    per_page = int((A4_PX[1] - 2 * MARGIN_PX) // (font.size * LINE_SPACING))
    lines: list[str] = []
    paragraphs = corpus()
    while len(lines) < count * per_page:
        for paragraph in paragraphs:
            line = ""
            for word in paragraph.split():
                trial = f"{line} {word}" if line else word
                if font.getlength(trial) <= width:
                    line = trial
                else:
                    lines.append(line)
                    line = word
            lines += [line, ""]
    pages = [lines[i : i + per_page] for i in range(0, count * per_page, per_page)]
    return pages


def scanned_pdf(pages: list[list[str]], path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(FONT, round(FONT_PT * SCAN_DPI / 72))
    images = []
    for lines in pages:
        image = Image.new("L", A4_PX, 255)
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((MARGIN_PX, MARGIN_PX + n * font.size * LINE_SPACING), line, font=font, fill=0)
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=SCAN_DPI)


def text_pdf(pages: list[list[str]], path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_font("DejaVuSerif", fname=FONT)
    pdf.set_font("DejaVuSerif", size=FONT_PT)
    mm_per_px = 25.4 / SCAN_DPI
    for lines in pages:
        pdf.add_page()
        for n, line in enumerate(lines):
            if line:
                top = (MARGIN_PX + n * FONT_PT * SCAN_DPI / 72 * LINE_SPACING) * mm_per_px
                pdf.text(MARGIN_PX * mm_per_px, top + FONT_PT * 0.3528, line)
    pdf.output(str(path))


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]


def normalised(words: list[str]) -> list[str]:
    out = [re.sub(r"[^\w]", "", w.lower()) for w in words]
    return [w for w in out if w]


def measure_ocr(pages: list[list[str]], scan: Path, dpi: int) -> dict[str, Any]:
    from assistant.settings import DocumentSettings
    from retrievers.activity import tallying
    from retrievers.ocr import ocr_pdf_pages

    notes: list[str] = []
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # Tesseract runs as a child process
    with tallying() as tally:
        started = time.perf_counter()
        texts = ocr_pdf_pages(
            scan, scan.read_bytes(), list(range(1, len(pages) + 1)), DocumentSettings(ocr_dpi=dpi), notes
        )
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    assert not notes, notes
    chars = words = errors = n_words = n_errors = 0
    for number, lines in enumerate(pages, start=1):
        reference = " ".join(lines).split()
        hypothesis = texts.get(number, "").split()
        chars += len(" ".join(reference))
        words += len(reference)
        errors += word_errors(reference, hypothesis)
        n_ref, n_hyp = normalised(reference), normalised(hypothesis)
        n_words += len(n_ref)
        n_errors += word_errors(n_ref, n_hyp)
    return {
        "pages": len(pages),
        "dpi": dpi,
        "seconds": round(wall, 2),
        "seconds_per_page": round(tally.ocr_seconds / tally.ocr_pages, 2),
        "tesseract_cpu_seconds_per_page": round(cpu / len(pages), 2),  # steadier than wall time on a busy machine
        "chars_per_page": round(chars / len(pages)),
        "chars_per_second": round(chars / tally.ocr_seconds),
        "words": words,
        "word_accuracy": round(1 - errors / words, 4),
        "word_accuracy_normalised": round(1 - n_errors / n_words, 4),
    }


def measure_ingest(scan: Path, text: Path, dpi: int, root: Path) -> dict[str, Any]:
    from assistant import Assistant, Settings
    from retrievers.report import IngestProgress

    bot = Assistant.from_settings(Settings(data_dir=root / "state", ocr_dpi=dpi))
    warm = root / "warm"
    warm.mkdir()
    (warm / "warm.txt").write_text("The embedder is loaded before any timing.\n")
    bot.ingest(warm, "warm")
    out: dict[str, Any] = {}
    for name, pdf in (("text", text), ("scan", scan)):
        folder = root / name
        folder.mkdir()
        (folder / pdf.name).write_bytes(pdf.read_bytes())
        events: list[IngestProgress] = []
        report = bot.ingest(folder, name, on_progress=events.append)
        assert not report.files_failed and not report.files_partial, (report.files_failed, report.files_partial)
        print(f"  {report.summary()}")
        shown = [e.activity for e in events if e.activity]
        if shown:
            print(f"  progress events with OCR activity: {len(shown)} (first {shown[0]!r}, last {shown[-1]!r})")
        out[name] = {
            "seconds": round(report.seconds, 2),
            "chunks": report.chunks_added,
            "ocr_pages": report.ocr_pages,
            "ocr_seconds_per_page": round(report.ocr_seconds_per_page, 2),
            "activity_events": len(shown),
        }
    out["ratio_seconds_scan_to_text"] = round(out["scan"]["seconds"] / out["text"]["seconds"], 1)
    out["ocr_share_of_scan_ingest"] = round(
        out["scan"]["ocr_pages"] * out["scan"]["ocr_seconds_per_page"] / out["scan"]["seconds"], 2
    )
    bot.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10, help="pages OCR'd for speed and accuracy")
    parser.add_argument("--scan-pages", type=int, default=50, help="pages of the scanned PDF ingested")
    parser.add_argument("--dpi", type=int, default=300, help="the ocr_dpi setting: resolution pages are rendered at")
    parser.add_argument("--skip-ingest", action="store_true", help="only the OCR speed and accuracy")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from retrievers.ocr import ocr_available

    if reason := ocr_available("eng"):
        sys.exit(reason)
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as tmp:
        root = Path(tmp)
        scan_pages = 0 if args.skip_ingest else args.scan_pages
        pages = layout(max(args.pages, scan_pages))
        print(f"pages: A4, {FONT_PT} pt DejaVu Serif, drawn at {SCAN_DPI} dpi from {', '.join(SOURCES)}")
        sample = root / "sample.pdf"
        scanned_pdf(pages[: args.pages], sample)
        print(f"1. OCR of {args.pages} pages at {args.dpi} dpi (Tesseract eng, through ocr_pdf_pages)")
        ocr = measure_ocr(pages[: args.pages], sample, args.dpi)
        print(
            f"  {ocr['seconds_per_page']} s/page ({ocr['tesseract_cpu_seconds_per_page']} s of Tesseract CPU), "
            f"{ocr['chars_per_second']} characters/s "
            f"({ocr['chars_per_page']} characters a page); word accuracy {ocr['word_accuracy']:.2%} strict, "
            f"{ocr['word_accuracy_normalised']:.2%} normalised, over {ocr['words']} words"
        )
        result: dict[str, Any] = {"ocr": ocr}
        if scan_pages:
            scan, text = root / "scanned.pdf", root / "text.pdf"
            scanned_pdf(pages[:scan_pages], scan)
            text_pdf(pages[:scan_pages], text)
            print(
                f"2. Assistant.ingest of a {scan_pages}-page PDF (scanned {scan.stat().st_size / 1e6:.1f} MB, "
                f"text layer {text.stat().st_size / 1e6:.2f} MB): text layer, then scanned"
            )
            ingest = measure_ingest(scan, text, args.dpi, root)
            print(
                f"  text {ingest['text']['seconds']} s, scanned {ingest['scan']['seconds']} s "
                f"({ingest['scan']['ocr_seconds_per_page']} s/page OCR): {ingest['ratio_seconds_scan_to_text']}x; "
                f"OCR is {ingest['ocr_share_of_scan_ingest']:.0%} of the scanned ingest"
            )
            result["ingest"] = ingest
        print(json.dumps(result))


if __name__ == "__main__":
    main()
