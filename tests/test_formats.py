"""Every supported format is parsed into sections that keep where the text sits."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import InputFileError
from assistant.settings import DocumentSettings
from retrievers.detect import detect_kind
from retrievers.loaders import parse
from tests.samples import write_all_formats, write_docx, write_pdf

OPTIONS = DocumentSettings()


def sections(path: Path, options: DocumentSettings = OPTIONS) -> list[tuple[str, str]]:
    data = path.read_bytes()
    return [(d.metadata["location"], d.page_content) for d in parse(detect_kind(path, data), path, data, options)]


def test_each_format_keeps_its_structure(tmp_path: Path) -> None:
    folder = write_all_formats(tmp_path / "docs")
    assert sections(folder / "notes.txt") == [("", "The loading dock opens at 06:30 on weekdays.\n")]
    assert sections(folder / "guide.md")[-1] == (
        "Safety › Gas leaks",
        "Gas leaks\n\nIf you smell gas, close the valve G2 and leave.",
    )
    assert sections(folder / "policy.rst")[-1] == ("Holiday", "Holiday\n\nStaff get 27 days of paid holiday per year.")
    # The "Prev Up Home Next" bar is site chrome, dropped; so is "Support", a heading with
    # nothing under it but its subheading (which keeps it in its path).
    assert sections(folder / "page.html") == [("Hotline", "Hotline\nThe hotline number is 0800 555 0199.")]
    assert sections(folder / "specs.pdf") == [
        ("page 1", "The K9 compressor weighs 38 kg."),
        ("page 2", "Its noise level is 52 dB."),
    ]
    docx = dict(sections(folder / "pump.docx"))
    assert docx["Installation › Torque"].endswith("Tighten the anchor bolts to 45 Nm.")
    assert docx["Installation › Torque › table 1"] == "Part: Seal kit; Interval: every 2 years"
    assert sections(folder / "parts.csv") == [
        ("row 1", "part: valve G2\nprice: 14.50 EUR\nsupplier: Acme"),
        ("row 2", "part: filter F7\nprice: 9.90 EUR\nsupplier: Borg"),
    ]
    assert sections(folder / "faq.json") == [("Parking", "Visitors park on level -1."), ("Wifi", "Wifi is GUEST-5.")]
    nested = DocumentSettings(json_text_field="body.text")
    assert sections(folder / "tickets.jsonl", nested) == [
        ("line 1", "Printer P3 jams with A3 paper."),
        ("line 2", "Badge reader B1 resets nightly."),
    ]


def test_json_without_the_text_field_names_the_setting(tmp_path: Path) -> None:
    folder = write_all_formats(tmp_path / "docs")
    with pytest.raises(
        InputFileError, match=r"no record has a text field 'text' \(fields seen: body, id\).*JSON_TEXT_FIELD"
    ):
        sections(folder / "tickets.jsonl")


def test_type_comes_from_content_as_well_as_name(tmp_path: Path) -> None:
    html = tmp_path / "README"
    html.write_text("<!DOCTYPE html><html><body><h1>Doc</h1><p>Body text.</p></body></html>")
    assert detect_kind(html, html.read_bytes()) == "html"
    pdf_named_txt = write_pdf(tmp_path / "scan.txt", ["Real PDF content."])
    assert detect_kind(pdf_named_txt, pdf_named_txt.read_bytes()) == "pdf"
    docx_without_suffix = write_docx(tmp_path / "report")
    assert detect_kind(docx_without_suffix, docx_without_suffix.read_bytes()) == "docx"
    png = tmp_path / "notes.md"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert detect_kind(png, png.read_bytes()) == "image"  # its parser names what is wrong with it
    text_named_png = tmp_path / "photo.png"
    text_named_png.write_text("Badges go back to the front desk.\n")
    assert detect_kind(text_named_png, text_named_png.read_bytes()) == "txt"
    assert detect_kind(tmp_path / "bad.tiff", bytes(range(256)) * 8) == "image"
    fake_pdf = tmp_path / "fake.pdf"
    fake_pdf.write_text("just text")
    with pytest.raises(InputFileError, match="is not a PDF"):
        sections(fake_pdf)


def test_pdf_failures_are_named(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no text layer"):
        sections(write_pdf(tmp_path / "scan.pdf", [""]))
    with pytest.raises(InputFileError, match="encrypted PDF that needs a password"):
        sections(write_pdf(tmp_path / "locked.pdf", ["Secret salary table."], password="open-sesame"))
    # Encrypted against editing only (empty user password): readable.
    assert sections(write_pdf(tmp_path / "restricted.pdf", ["Public text."], password="")) == [
        ("page 1", "Public text.")
    ]


def test_invalid_utf8_is_named(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(InputFileError, match=r"not valid UTF-8 \(byte 3\)"):
        sections(latin)
