"""Documents of every format, written by the libraries that write them for real."""

from __future__ import annotations

import json
from pathlib import Path


def write_docx(path: Path) -> Path:
    from docx import Document

    doc = Document()
    doc.add_heading("Pump Guide", level=1)
    doc.add_heading("Installation", level=2)
    doc.add_paragraph("Mount the P5 pump on a level concrete base with four M10 anchor bolts.")
    doc.add_heading("Torque", level=3)
    doc.add_paragraph("Tighten the anchor bolts to 45 Nm.")
    table = doc.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Part", "Interval"
    table.cell(1, 0).text, table.cell(1, 1).text = "Seal kit", "every 2 years"
    doc.save(str(path))
    return path


def write_pdf(path: Path, pages: list[str], *, password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
        else:
            pdf.rect(20, 20, 100, 60, style="F")  # a page with a drawing and no text layer
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    pdf.output(str(path))
    return path


def write_all_formats(folder: Path) -> Path:
    """One file of each supported format, each with a fact only it holds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("The loading dock opens at 06:30 on weekdays.\n")
    (folder / "guide.md").write_text(
        "# Boiler Guide\n\n## Safety\n\n### Gas leaks\n\nIf you smell gas, close the valve G2 and leave.\n"
    )
    (folder / "policy.rst").write_text(
        "Leave Policy\n============\n\nHoliday\n-------\n\nStaff get 27 days of paid holiday per year.\n"
    )
    (folder / "page.html").write_text(
        "<?xml version='1.0'?><html><body><div class=\"navheader\">Prev Up Home Next</div>"
        "<h1>Support</h1><h2>Hotline</h2><p>The hotline number is 0800 555 0199.</p></body></html>"
    )
    write_pdf(folder / "specs.pdf", ["The K9 compressor weighs 38 kg.", "Its noise level is 52 dB."])
    write_docx(folder / "pump.docx")
    (folder / "parts.csv").write_text("part,price,supplier\nvalve G2,14.50 EUR,Acme\nfilter F7,9.90 EUR,Borg\n")
    (folder / "faq.json").write_text(
        json.dumps(
            [{"title": "Parking", "text": "Visitors park on level -1."}, {"title": "Wifi", "text": "Wifi is GUEST-5."}]
        )
    )
    (folder / "tickets.jsonl").write_text(
        json.dumps({"id": 1, "body": {"text": "Printer P3 jams with A3 paper."}})
        + "\n"
        + json.dumps({"id": 2, "body": {"text": "Badge reader B1 resets nightly."}})
        + "\n"
    )
    return folder
