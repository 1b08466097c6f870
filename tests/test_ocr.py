"""OCR of scans and images with the real Tesseract: scanned PDFs made in the test (text
rendered to an image, saved as a PDF without a text layer), a PDF mixing a text page and a
scanned page, PNG, JPEG and multi-page TIFF files; page numbers in citations, progress per
page with its time, the report's kinds and OCR pages; and what happens without Tesseract,
with OCR off, and with corrupt images."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

from assistant import Assistant, InputFileError, Settings
from assistant.settings import DocumentSettings
from retrievers import ocr
from retrievers.activity import Channel, tallying, watching
from retrievers.detect import detect_kind
from retrievers.images import parse_image
from retrievers.loaders import parse
from retrievers.ocr import ocr_available, ocr_pdf_pages, page_list
from retrievers.report import READING, IngestProgress, IngestReport

pytestmark = pytest.mark.slow

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
DPI = 150  # pages are drawn and rendered at 150 dpi: as legible to Tesseract as 300, and twice as fast
OPTIONS = DocumentSettings(ocr_dpi=DPI)
INSTALL = "apt install tesseract-ocr tesseract-ocr-eng"

SCAN = ["Invoice 4471 was paid by Harbor Freight Logistics.", "The fire door on level 3 stays closed at night."]
MIXED_SCANNED = "Spare filters for the K9 compressor are kept in cabinet 12."
FORM = "Visitor badges are returned to the front desk."
PHOTO = "The boiler room key hangs behind the blue door."
FAX = ["Fax page one: the pallet count is 48.", "Fax page two: delivery is booked for Thursday."]


def page(text: str, size: tuple[int, int] = (1240, 600), mode: str = "L") -> Image.Image:
    """A page with `text` drawn in a 14 pt sans-serif font at 150 dpi, as a scanner would see it."""
    image = Image.new(mode, size, "white")
    ImageDraw.Draw(image).multiline_text((80, 120), text, font=ImageFont.truetype(FONT, 30), fill="black")
    return image


def scanned_pdf(path: Path, texts: list[str]) -> Path:
    """A PDF whose pages are only images (Pillow writes no text layer)."""
    pages = [page(text) for text in texts]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=DPI)
    return path


def mixed_pdf(path: Path) -> Path:
    """Page 1 has a text layer (fpdf2), page 2 is a scanned image."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "The K9 compressor weighs 38 kg.")
    pdf.add_page()
    pdf.image(page(MIXED_SCANNED, (1240, 1754)), x=0, y=0, w=210)
    pdf.output(str(path))
    return path


def transparent_png(path: Path, text: str) -> Path:
    """Black text on a transparent background: read as if on white paper."""
    image = Image.new("RGBA", (1240, 600), (0, 0, 0, 0))
    ImageDraw.Draw(image).text((80, 120), text, font=ImageFont.truetype(FONT, 30), fill=(0, 0, 0, 255))
    image.save(path)
    return path


def sideways_jpeg(path: Path, text: str) -> Path:
    """A phone photo stored rotated, with the EXIF orientation tag that puts it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    page(text).convert("RGB").rotate(90, expand=True).save(path, quality=90, exif=exif)
    return path


def fax_tiff(path: Path, texts: list[str]) -> Path:
    """A multi-page, 1-bit, CCITT group 4 TIFF, as fax software writes them."""
    pages = [page(text).convert("1") for text in texts]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="group4", dpi=(DPI, DPI))
    return path


def scans_folder(folder: Path) -> Path:
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", SCAN)
    mixed_pdf(folder / "mixed.pdf")
    transparent_png(folder / "form.png", FORM)
    sideways_jpeg(folder / "photo.jpg", PHOTO)
    fax_tiff(folder / "fax.tiff", FAX)
    return folder


Ingested = tuple[Assistant, IngestReport, list[IngestProgress]]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Assistant, Path]:
    if ocr_available("eng"):
        pytest.fail(f"these tests need the real Tesseract: {ocr_available('eng')}")
    root = tmp_path_factory.mktemp("ocr")
    bot = Assistant.from_settings(Settings(data_dir=root / "state", ocr_dpi=DPI))
    return bot, scans_folder(root / "docs")


@pytest.fixture(scope="module")
def ingested(scans: tuple[Assistant, Path]) -> Ingested:
    bot, folder = scans
    events: list[IngestProgress] = []
    report = bot.ingest(folder, "scans", on_progress=events.append)
    return bot, report, events


def test_scans_and_images_are_indexed_and_counted(ingested: Ingested) -> None:
    _, report, _ = ingested
    assert report.files_failed == [] and report.files_partial == [], (report.files_failed, report.files_partial)
    assert report.kinds == {"pdf": 2, "image": 3}
    # scan.pdf 2, mixed.pdf 1 (its text page is not OCR'd), form.png 1, photo.jpg 1, fax.tiff 2.
    assert report.ocr_pages == 7 and report.ocr_seconds > 0
    summary = report.summary()
    assert "(3 image, 2 pdf)" in summary and "OCR 7 pages, " in summary and " s/page" in summary
    data: dict[str, Any] = report.to_dict()
    assert data["files"]["kinds"] == {"pdf": 2, "image": 3} and data["ocr"]["pages"] == 7


@pytest.mark.parametrize(
    ("question", "citation", "words"),
    [
        ("Who paid invoice 4471?", "scan.pdf › page 1", "Harbor Freight Logistics"),
        ("When does the fire door on level 3 stay closed?", "scan.pdf › page 2", "closed at night"),
        ("Where are spare filters for the K9 compressor kept?", "mixed.pdf › page 2", "cabinet 12"),
        ("Where are visitor badges returned?", "form.png", "front desk"),
        ("Where does the boiler room key hang?", "photo.jpg", "blue door"),
        ("When is the delivery booked?", "fax.tiff › page 2", "booked for Thursday"),
    ],
)
def test_ocr_text_is_found_and_cited_with_its_page(
    ingested: Ingested, question: str, citation: str, words: str
) -> None:
    bot, _, _ = ingested
    best = bot.search(question, "scans", k=1)[0]
    meta = best.metadata
    assert (f"{meta['source']} › {meta['location']}" if meta["location"] else meta["source"]) == citation
    assert words in best.page_content
    assert meta["ocr"] is True and isinstance(meta["page"], int)


def test_the_text_page_of_a_mixed_pdf_is_not_ocrd(scans: tuple[Assistant, Path]) -> None:
    _, folder = scans
    data = (folder / "mixed.pdf").read_bytes()
    with tallying() as tally:
        sections = parse("pdf", folder / "mixed.pdf", data, OPTIONS, [])
    assert tally.ocr_pages == 1
    assert [(s.metadata["location"], s.metadata.get("ocr", False)) for s in sections] == [
        ("page 1", False),
        ("page 2", True),
    ]
    assert sections[0].page_content == "The K9 compressor weighs 38 kg."


def test_a_scanned_page_stamped_with_a_little_text_is_still_ocrd(tmp_path: Path) -> None:
    """A scan whose text layer is only a page number (what scanning software and Bates
    stamping leave) is read by OCR; a text page with the same image is not."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=9)
    pdf.add_page()
    pdf.image(page(MIXED_SCANNED, (1240, 1754)), x=0, y=0, w=210)
    pdf.text(180, 290, "Page 7")
    pdf.add_page()
    pdf.image(page(FORM, (1240, 1754)), x=0, y=0, w=210)
    pdf.set_xy(10, 280)
    pdf.multi_cell(0, 5, "This page has a real text layer beside its picture, long enough to be the page's text.")
    path = Path(pdf.output(str(tmp_path / "stamped.pdf")) or tmp_path / "stamped.pdf")
    with tallying() as tally:
        sections = parse("pdf", path, path.read_bytes(), OPTIONS, [])
    assert tally.ocr_pages == 1
    assert sections[0].metadata["ocr"] is True and "cabinet 12" in sections[0].page_content
    assert sections[1].metadata.get("ocr", False) is False and "real text layer" in sections[1].page_content


def test_progress_shows_each_ocr_page_and_its_time(ingested: Ingested) -> None:
    _, _, events = ingested
    said = [(e.path, e.activity) for e in events if e.activity]
    assert said and all(e.phase == READING for e in events if e.activity)
    assert any(path == "scan.pdf" and text.startswith("OCR page ") for path, text in said), said
    # From the second page of a file on, the time per page so far.
    assert any(" · " in text and text.endswith(" s/page") for _, text in said), said


def test_activity_reaches_the_waiting_thread_for_its_own_file_only() -> None:
    channel = Channel()
    with watching(channel):
        channel.begin("a.pdf")
        ocr.report_activity("OCR page 1 (1/2)")
    assert channel.take("b.pdf") is None
    assert channel.take("a.pdf") == "OCR page 1 (1/2)" and channel.take("a.pdf") is None
    ocr.report_activity("unwatched")  # outside a watch: nothing, and no error
    assert channel.take("a.pdf") is None


def test_without_tesseract_the_report_names_the_package_and_the_rest_is_indexed(
    scans: tuple[Assistant, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Provoked failure: pytesseract is pointed at a Tesseract binary that does not exist.
    import pytesseract

    bot, folder = scans
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("scan.pdf", "mixed.pdf", "form.png"):
        (docs / name).write_bytes((folder / name).read_bytes())
    (docs / "notes.txt").write_text("The loading dock opens at 06:30 on weekdays.\n")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", str(tmp_path / "bin" / "tesseract"))
    assert INSTALL in (ocr_available("eng") or "")

    report = bot.ingest(docs, "no-tesseract")
    failed = {issue.path: issue.reason for issue in report.files_failed}
    assert set(failed) == {"scan.pdf", "form.png"}
    assert "Tesseract is not installed" in failed["scan.pdf"] and INSTALL in failed["scan.pdf"]
    assert "pages 1-2" in failed["scan.pdf"]
    assert failed["form.png"].startswith("is a PNG image, read only with OCR") and INSTALL in failed["form.png"]
    partial = {issue.path: issue.reason for issue in report.files_partial}
    assert partial == {"mixed.pdf": f"page 2 (no text layer) not read: {ocr_available('eng')}"}
    assert report.files_new == 2 and report.kinds == {"pdf": 1, "txt": 1} and report.ocr_pages == 0
    assert bot.search("When does the loading dock open?", "no-tesseract", k=1)[0].metadata["source"] == "notes.txt"


def test_ocr_off_names_the_setting(scans: tuple[Assistant, Path]) -> None:
    _, folder = scans
    off = DocumentSettings(ocr=False)
    notes: list[str] = []
    assert ocr_pdf_pages(folder / "scan.pdf", (folder / "scan.pdf").read_bytes(), [1, 2], off, notes) == {}
    assert notes == ["pages 1-2 (no text layer) not read: " + ocr.OFF]
    assert "ASSISTANT_OCR" in ocr.OFF
    with pytest.raises(InputFileError, match=r"is a PNG image, read only with OCR, and OCR is off .*ASSISTANT_OCR"):
        parse_image(folder / "form.png", (folder / "form.png").read_bytes(), off, [])


def test_a_missing_language_names_its_package() -> None:
    # Real: no Tesseract language data "kat" (Georgian) is installed on this machine.
    assert ocr_available("eng+kat") == "Tesseract has no language data for kat: apt install tesseract-ocr-kat"
    assert ocr.install_hint("chi_sim+eng") == "tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-eng"


def test_a_page_that_takes_too_long_is_named(scans: tuple[Assistant, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Provoked failure: the per-page time limit is cut to 10 ms, which real Tesseract cannot meet.
    _, folder = scans
    monkeypatch.setattr(ocr, "PAGE_TIMEOUT_S", 0.01)
    notes: list[str] = []
    assert ocr_pdf_pages(folder / "scan.pdf", (folder / "scan.pdf").read_bytes(), [1, 2], OPTIONS, notes) == {}
    assert notes == [
        "page 1 OCR took longer than 0.01 s and was stopped",
        "page 2 OCR took longer than 0.01 s and was stopped",
    ]
    with pytest.raises(InputFileError, match=r"nothing could be read from it: page 1 OCR took longer"):
        parse("pdf", folder / "scan.pdf", (folder / "scan.pdf").read_bytes(), OPTIONS, [])


def png_bytes(text: str) -> bytes:
    out = io.BytesIO()
    page(text).save(out, format="PNG")
    return out.getvalue()


def test_corrupt_and_empty_images_are_reported_and_the_rest_indexed(
    scans: tuple[Assistant, Path], tmp_path: Path
) -> None:
    bot, folder = scans
    docs = tmp_path / "docs"
    docs.mkdir()
    good = png_bytes(FORM)
    (docs / "cut.png").write_bytes(good[: len(good) // 2])  # truncated half way through its pixels
    tiff = (folder / "fax.tiff").read_bytes()
    (docs / "broken.tiff").write_bytes(tiff[:8] + b"\x00" * (len(tiff) - 8))  # header kept, the rest zeroed
    (docs / "noise.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # a JPEG signature, then noise
    out = io.BytesIO()
    Image.new("L", (400, 300), "white").save(out, format="PNG")
    (docs / "blank.png").write_bytes(out.getvalue())
    (docs / "form.png").write_bytes(good)
    for name in ("cut.png", "broken.tiff", "noise.jpg", "blank.png"):
        assert detect_kind(docs / name, (docs / name).read_bytes()) == "image", name

    report = bot.ingest(docs, "bad-images")
    failed = {issue.path: issue.reason for issue in report.files_failed}
    assert set(failed) == {"cut.png", "broken.tiff", "noise.jpg", "blank.png"}, failed
    assert failed["cut.png"].startswith("is not a readable PNG image (") and "re-save it" in failed["cut.png"]
    assert failed["broken.tiff"].startswith("is not a readable TIFF image (")
    assert failed["noise.jpg"].startswith("is not a readable JPEG image (")
    assert failed["blank.png"].startswith("is a PNG image in which OCR found no text")
    assert report.files_new == 1 and report.kinds == {"image": 1}


def test_ocr_lines_are_joined_into_paragraphs() -> None:
    """Tesseract breaks lines where the page did; a quote must not stop before the figure."""
    read = (
        "The Supplier's total liability is capped\nat EUR 250,000 per con-\ntract year.\n\n"
        "Governing law\n\n- one\n- two"
    )
    assert ocr.reflow(read) == (
        "The Supplier's total liability is capped at EUR 250,000 per contract year.\n\nGoverning law\n\n- one\n- two"
    )


def test_page_lists_are_short() -> None:
    assert page_list([3]) == "page 3"
    assert page_list([7, 1, 2, 3, 5, 8]) == "pages 1-3, 5, 7-8"


def test_tesseract_runs_on_one_thread_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenMP threads spin on a busy machine (5.4 s a page on one thread, 24 s with them).
    import pytesseract.pytesseract as binding

    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    assert "Harbor Freight" in ocr.ocr_image(Image.open(io.BytesIO(png_bytes(SCAN[0]))), "eng")
    assert binding.environ["OMP_THREAD_LIMIT"] == "1"
    monkeypatch.setenv("OMP_THREAD_LIMIT", "2")  # the user's own setting wins
    assert binding.environ["OMP_THREAD_LIMIT"] == "2"


def test_the_cli_bar_shows_ocr_pages_and_the_report_its_kinds(scans: tuple[Assistant, Path], tmp_path: Path) -> None:
    from tests.test_ingest_progress import ANSI, run_in_terminal

    _, folder = scans
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "scan.pdf").write_bytes((folder / "scan.pdf").read_bytes())
    # Rendered at 300 dpi, a page takes Tesseract over a second: long enough for the bar to show it.
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "ASSISTANT_OCR_DPI": "300"}
    env.pop("NO_COLOR", None)
    output, status = run_in_terminal(["--data-dir", str(tmp_path / "state"), "ingest", str(docs), "-c", "scans"], env)
    assert status == 0, output
    frames = [ANSI.sub("", line).strip() for line in re.split(r"[\r\n]+", output)]
    bars = " ".join(f for f in frames if "ingesting" in f)
    # The bar is redrawn twice a second: on a fast machine a page may be read between two redraws.
    assert "reading" in bars and re.search(r"OCR page [12] \([12]/2\)", bars), bars
    assert "scans: files 1 new" in output and "(1 pdf); OCR 2 pages, " in output, output
