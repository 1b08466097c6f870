"""Text of scanned pages and images, read with Tesseract (Debian: tesseract-ocr).

Only pages that have no text of their own come here: retrievers.pdf passes the PDF pages
without a text layer, retrievers.images the pages of a PNG, JPEG or TIFF file. PDF pages
are rendered with pypdfium2 at the `ocr_dpi` setting, in grayscale, and read with the
`ocr_languages` setting through pytesseract. Each page reports its progress and its time
(retrievers.activity), so a 50-page scan shows where it is and how fast it goes. A page
Tesseract fails on or takes too long over becomes a note naming the page; the other pages
are still read. When OCR is off or Tesseract (or a language) is not installed, the pages
are named in one note that says what to install or set, and nothing is read.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import ChainMap
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.settings import DocumentSettings
from retrievers.activity import record_ocr_page, report_activity

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "MAX_PAGE_PIXELS",
    "OFF",
    "PAGE_TIMEOUT_S",
    "PDFIUM_LOCK",
    "OcrUnavailable",
    "install_hint",
    "ocr_available",
    "ocr_image",
    "ocr_pages",
    "ocr_pdf_pages",
    "page_list",
]

PAGE_TIMEOUT_S = 300  # a page Tesseract takes longer over is reported (a scan of noise, a poster)
MAX_PAGE_PIXELS = 40_000_000  # a page rendered larger is scaled down: 300 dpi A4 is 8.7 million
OFF = "OCR is off (the ocr setting, ASSISTANT_OCR=false); turn it on to read it"

PDFIUM_LOCK = threading.Lock()  # pdfium is not thread-safe: one call at a time in the process


class OcrUnavailable(Exception):
    """Tesseract went missing while pages were being read."""


def install_hint(languages: str) -> str:
    """The Debian packages OCR needs for `languages` ("eng+deu" -> tesseract-ocr-eng tesseract-ocr-deu)."""
    return " ".join(
        ["tesseract-ocr"] + [f"tesseract-ocr-{lang.lower().replace('_', '-')}" for lang in _split(languages)]
    )


def _split(languages: str) -> list[str]:
    return [lang for lang in languages.split("+") if lang]


def ocr_available(languages: str) -> str | None:
    """None when Tesseract runs and has every language of `languages` ("eng", "deu+eng"),
    else the reason, naming the Debian packages to install. Checked once per process (per
    Tesseract command and languages)."""
    import pytesseract

    return _check(str(pytesseract.pytesseract.tesseract_cmd), languages)


@lru_cache(maxsize=32)
def _check(command: str, languages: str) -> str | None:
    import pytesseract

    try:
        pytesseract.get_tesseract_version()
        installed = set(pytesseract.get_languages())
    except pytesseract.TesseractNotFoundError:
        return f"Tesseract is not installed ({command!r} not found): apt install {install_hint(languages)}"
    except (OSError, SystemExit) as exc:  # pytesseract exits on a version it does not know
        return f"Tesseract does not run ({exc}); reinstall it: apt install {install_hint(languages)}"
    missing = [lang for lang in _split(languages) if lang not in installed]
    if missing:
        packages = " ".join(install_hint(lang).split()[1] for lang in missing)
        return f"Tesseract has no language data for {'+'.join(missing)}: apt install {packages}"
    return None


def page_list(pages: Iterable[int]) -> str:
    """ "page 3", "pages 2, 5-7"."""
    numbers = sorted(set(pages))
    runs: list[str] = []
    start = prev = numbers[0] if numbers else 0
    for number in [*numbers[1:], 0]:  # 0 closes the last run
        if number == prev + 1:
            prev = number
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = number
    return f"{'page' if len(numbers) == 1 else 'pages'} {', '.join(runs)}"


def _one_thread() -> None:
    """Tesseract runs with OMP_THREAD_LIMIT=1 unless the environment sets it.

    Its OpenMP threads spin-wait for each other: on 2 busy cores (the embedder runs while
    pages are read) one A4 page took 24 s of wall time with them, 5.4 s with one thread.
    pytesseract starts Tesseract with the mapping it calls `environ` (os.environ); it is
    given a live view of os.environ in which that variable defaults to 1. Only Tesseract's
    processes see it: this process's own OpenMP libraries (torch) are left alone."""
    import pytesseract.pytesseract as binding

    if not isinstance(getattr(binding, "environ", None), ChainMap):
        binding.environ = ChainMap(os.environ, {"OMP_THREAD_LIMIT": "1"})


def ocr_image(image: Image, languages: str, timeout_s: float | None = None) -> str:
    """The text Tesseract reads on one page image (grayscale), within `timeout_s` (default
    PAGE_TIMEOUT_S). Raises pytesseract's errors, RuntimeError on a timeout."""
    import pytesseract

    _one_thread()

    gray = _gray(image)
    # Handed to Tesseract as binary PGM, uncompressed: a PNG of a 300 dpi page takes a while to write.
    gray.format = "PPM"
    text = pytesseract.image_to_string(gray, lang=languages, timeout=timeout_s or PAGE_TIMEOUT_S)
    return reflow(text.replace("\f", "\n"))


_LIST_START = re.compile(r"^\s*(?:[-*•·]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s+")
_BROKEN_WORD = re.compile(r"[A-Za-z]-$")


def reflow(text: str) -> str:
    """Tesseract's lines joined into paragraphs: it breaks lines where the page did, which
    mid-sentence would cut a quoted sentence before its figure ("capped" | "at EUR 250,000").
    A blank line (Tesseract's block break) or a list item starts a new line; a word
    hyphenated at a line end is joined again."""
    paragraphs: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or _LIST_START.match(line):
            if current:
                paragraphs.append(current)
            current = line
            if not line:
                paragraphs.append("")
            continue
        if not current:
            current = line
        elif _BROKEN_WORD.search(current) and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}"
    if current:
        paragraphs.append(current)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(paragraphs)).strip()


def _gray(image: Image) -> Image:
    if image.mode == "L":
        return image.copy()
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit and float scans: scale, do not clip
        low, high = (float(v) for v in image.getextrema() if not isinstance(v, tuple))
        span = (high - low) or 1.0
        return image.point(lambda v: (v - low) * 255.0 / span).convert("L")
    if "A" in image.getbands() or image.mode == "P":  # transparent parts read as white paper
        from PIL import Image as PILImage

        rgba = image.convert("RGBA")
        paper = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(paper, rgba).convert("L")
    return image.convert("L")


def ocr_pages(
    pages: list[int],
    render: Callable[[int], Image],
    options: DocumentSettings,
    failed: Callable[[int, str], None],
) -> dict[int, str]:
    """OCR `pages` (1-based numbers) one by one, each rendered by `render`; reports progress
    and the time per page. A page that cannot be rendered or read is passed to `failed`
    with the reason, and the others are still read. Raises OcrUnavailable if Tesseract
    goes missing on the way (the pages not read are then for the caller to name)."""
    import pytesseract

    texts: dict[int, str] = {}
    spent = 0.0
    for done, page in enumerate(pages):
        pace = f" · {spent / done:.1f} s/page" if done else ""
        report_activity(f"OCR page {page} ({done + 1}/{len(pages)}){pace}")
        started = time.perf_counter()
        try:
            image = render(page)
            text = ocr_image(image, options.ocr_languages)
        except pytesseract.TesseractNotFoundError:
            _check.cache_clear()
            raise OcrUnavailable(ocr_available(options.ocr_languages) or "Tesseract is not installed") from None
        except RuntimeError as exc:  # pytesseract's timeout, pdfium's render errors
            if "timeout" in str(exc).lower():
                failed(page, f"OCR took longer than {PAGE_TIMEOUT_S} s and was stopped")
            else:
                failed(page, f"could not be rendered for OCR ({exc})")
            continue
        except pytesseract.TesseractError as exc:
            failed(page, f"Tesseract failed on it ({exc.message or exc.status})")
            continue
        except (OSError, ValueError, IndexError, MemoryError) as exc:
            failed(page, f"could not be read with OCR ({type(exc).__name__}: {exc})")
            continue
        seconds = time.perf_counter() - started
        spent += seconds
        record_ocr_page(seconds)
        if text.strip():
            texts[page] = text
    if pages:
        report_activity(f"OCR {len(pages)} {'page' if len(pages) == 1 else 'pages'} · {spent / len(pages):.1f} s/page")
    return texts


def ocr_pdf_pages(
    path: Path, data: bytes, pages: list[int], options: DocumentSettings, notes: list[str]
) -> dict[int, str]:
    """The OCR text of the given 1-based pages of a PDF (pages whose text is only an image),
    rendered at `options.ocr_dpi`; pages where OCR finds nothing are left out. OCR off or
    unavailable: {} and one note naming the pages and what to set or install."""
    if not pages:
        return {}
    where = f"{page_list(pages)} (no text layer)"
    if not options.ocr:
        notes.append(f"{where} not read: {OFF}")
        return {}
    if reason := ocr_available(options.ocr_languages):
        notes.append(f"{where} not read: {reason}")
        return {}
    import pypdfium2 as pdfium

    try:
        with PDFIUM_LOCK:
            document = pdfium.PdfDocument(data)
    except (pdfium.PdfiumError, OSError, ValueError) as exc:
        notes.append(f"{where} could not be rendered for OCR ({exc})")
        return {}

    def render(page: int) -> Image:  # pages with a text layer are never rendered
        with PDFIUM_LOCK:
            pdf_page = document[page - 1]
            try:
                width, height = pdf_page.get_size()  # in points, 72 a inch
                scale = options.ocr_dpi / 72
                if width * height * scale * scale > MAX_PAGE_PIXELS:
                    scale = (MAX_PAGE_PIXELS / (width * height)) ** 0.5
                bitmap = pdf_page.render(scale=scale, grayscale=True)
                try:
                    return bitmap.to_pil().copy()  # a gray image shares the bitmap's memory, freed with it
                finally:
                    bitmap.close()
            finally:
                pdf_page.close()

    failures: list[str] = []
    try:
        return ocr_pages(pages, render, options, lambda page, reason: failures.append(f"page {page} {reason}"))
    except OcrUnavailable as exc:
        notes.append(f"{where} not read: {exc}")
        return {}
    finally:
        notes.extend(failures)
        with PDFIUM_LOCK:
            document.close()
