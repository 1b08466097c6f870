"""PNG, JPEG and TIFF files to sections, read with OCR (retrievers.ocr): scans and photos
of pages, faxes saved as TIFF.

A single image is one section (location "", page 1); a multi-page TIFF, as fax and scanner
software write them, is a section per page ("page 3"). Every section has `ocr=True`, so a
citation of it can be told apart from a text layer. An image that cannot be decoded, an
image where OCR found no text, and OCR being off or not installed are the file's reported
failure, naming the package to install; a page of a TIFF that fails is a note, and the
other pages are indexed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.documents import Document

from assistant.errors import InputFileError
from assistant.settings import DocumentSettings
from retrievers.ocr import MAX_PAGE_PIXELS, OFF, OcrUnavailable, ocr_available, ocr_pages
from retrievers.sections import section

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["image_format", "parse_image"]

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)
_BY_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}
_READ = {"PNG", "JPEG", "MPO", "TIFF"}  # MPO: a camera's JPEG with a preview picture after it


def image_format(path: Path, data: bytes) -> str:
    """ "PNG", "JPEG" or "TIFF" by the file's first bytes, else by its extension, else "image"."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    return _BY_SUFFIX.get(path.suffix.lower(), "image")


def parse_image(path: Path, data: bytes, options: DocumentSettings, notes: list[str]) -> list[Document]:
    from PIL import Image as PILImage
    from PIL import ImageOps, UnidentifiedImageError

    name = image_format(path, data)
    if not options.ocr:
        raise InputFileError(str(path), f"is a {name} image, read only with OCR, and {OFF}")
    if reason := ocr_available(options.ocr_languages):
        raise InputFileError(str(path), f"is a {name} image, read only with OCR, and {reason}")
    unreadable = f"is not a readable {name} image"
    try:
        image = PILImage.open(io.BytesIO(data))
        image.load()  # decodes the first page: a truncated or corrupt file fails here
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, PILImage.DecompressionBombError) as exc:
        # Pillow names its in-memory buffer ("cannot identify image file <_io.BytesIO ...>"): not for users.
        why = "its content is not an image Pillow recognises" if isinstance(exc, UnidentifiedImageError) else exc
        raise InputFileError(str(path), f"{unreadable} ({why}); open it in an image viewer and re-save it") from None
    if image.format not in _READ:
        raise InputFileError(str(path), f"is a {image.format} image, not PNG, JPEG or TIFF; save it as PNG to index it")
    frames: int = getattr(image, "n_frames", 1)
    multipage = image.format == "TIFF" and frames > 1
    pages = list(range(1, frames + 1)) if multipage else [1]

    def render(page: int) -> Image:
        image.seek(page - 1)
        image.load()
        frame = ImageOps.exif_transpose(image) or image  # a phone photo is stored sideways, with a tag
        if frame.width * frame.height > MAX_PAGE_PIXELS:
            scale = (MAX_PAGE_PIXELS / (frame.width * frame.height)) ** 0.5
            frame = frame.resize((int(frame.width * scale), int(frame.height * scale)))
        return frame

    failures: list[str] = []
    try:
        texts = ocr_pages(pages, render, options, lambda page, why: failures.append(f"page {page} {why}"))
    except OcrUnavailable as exc:
        raise InputFileError(str(path), f"is a {name} image, read only with OCR, and {exc}") from None
    if not texts:
        if failures:
            raise InputFileError(str(path), f"{unreadable}: {'; '.join(failures)}")
        raise InputFileError(
            str(path),
            f"is a {name} image in which OCR found no text (languages {options.ocr_languages}); if it holds "
            "text, scan it at 300 dpi, or set ocr_languages to its language",
        )
    notes.extend(failures)
    return [
        section(text, f"page {page}" if multipage else "", page=page, ocr=True) for page, text in sorted(texts.items())
    ]
