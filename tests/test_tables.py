"""Tables stay tables: PDF (pdfplumber), HTML and DOCX tables become rows written with their
header, split only between rows, cited by page and table; a cell question finds its row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import Assistant, InputFileError
from assistant.settings import DocumentSettings
from retrievers.detect import detect_kind
from retrievers.loaders import parse
from retrievers.splitter import TokenSplitter
from retrievers.tables import row_line

CAPTION = "Table 1. Parcel rates per zone"
HEADER = ("Zone", "Rate", "Delivery days", "Carrier")
CARRIERS = ("Alpen Post", "Borealis", "Cygnus Freight", "Delta Route")


def rate_rows(count: int) -> list[tuple[str, str, str, str]]:
    """Zone 3 costs 4.50 EUR; no two zones share a rate."""
    return [(str(z), f"{1.5 * z:.2f} EUR", str(1 + z % 5), CARRIERS[z % 4]) for z in range(1, count + 1)]


def write_table_pdf(path: Path, rows: list[tuple[str, ...]], intro: str) -> Path:
    """A PDF with a paragraph, a caption and a real ruled table (fpdf2 draws every cell's border)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 7, intro, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.cell(0, 8, CAPTION, new_x="LMARGIN", new_y="NEXT")
    with pdf.table() as table:
        for cells in [HEADER, *rows]:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.multi_cell(0, 7, "Rates include VAT and fuel surcharge.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


HTML = """<html><head><title>Shipping</title></head><body>
<h1>Shipping</h1><h2>Parcel rates</h2><p>Rates depend on the zone.</p>
<table><caption>Rates per zone</caption>
<thead><tr><th>Zone</th><th>Rate</th><th>Carrier</th></tr></thead>
<tbody><tr><td>3</td><td>4.50 EUR</td><td>Borealis</td></tr>
<tr><td rowspan="2">7</td><td>10.50 EUR</td><td>Delta Route</td></tr>
<tr><td colspan="2">no Sunday delivery</td></tr></tbody></table>
<table><tr><td>A layout box around one note.</td></tr></table>
</body></html>"""


def write_table_docx(path: Path) -> Path:
    from docx import Document

    doc = Document()
    doc.add_heading("Shipping", level=1)
    doc.add_heading("Parcel rates", level=2)
    doc.add_paragraph("Table 2: Rates per zone")
    table = doc.add_table(rows=3, cols=3)
    rows = [("Zone", "Rate", "Carrier"), ("3", "4.50 EUR", "Borealis"), ("4", "6.00 EUR", "Cygnus")]
    for r, cells in enumerate(rows):
        for c, text in enumerate(cells):
            table.cell(r, c).text = text
    doc.add_paragraph("Rates are reviewed every January.")
    doc.save(str(path))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables")
    write_table_pdf(folder / "rates.pdf", rate_rows(8), "Parcels are priced by the zone they are sent to.")
    write_table_pdf(folder / "big_rates.pdf", rate_rows(90), "The full tariff, every zone we deliver to.")
    (folder / "rates.html").write_text(HTML)
    write_table_docx(folder / "rates.docx")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n%%EOF garbage")
    return folder


def sections(path: Path) -> list[tuple[str, str, dict[str, object]]]:
    data = path.read_bytes()
    found = parse(detect_kind(path, data), path, data, DocumentSettings(), [])
    return [(s.metadata["location"], s.page_content, s.metadata) for s in found]


def test_a_pdf_table_is_rows_with_their_header_cited_by_page_and_table(folder: Path) -> None:
    got = sections(folder / "rates.pdf")
    assert [(location, meta.get("page"), meta.get("table")) for location, _, meta in got] == [
        ("page 1", 1, None),
        ("page 1 › table 1", 1, "table 1"),
    ]
    page_text, table_text = got[0][1], got[1][1]
    assert table_text.splitlines()[0] == CAPTION
    assert table_text.splitlines()[3] == "Zone: 3; Rate: 4.50 EUR; Delivery days: 4; Carrier: Delta Route"
    assert len(table_text.splitlines()) == 1 + 8
    # The text around the table is the page's section; no cell is indexed twice.
    assert "priced by the zone" in page_text and "Rates include VAT" in page_text
    assert "4.50 EUR" not in page_text


def test_html_and_docx_tables_keep_their_heading_path(folder: Path) -> None:
    html = sections(folder / "rates.html")
    assert [(location, text) for location, text, _ in html] == [
        ("Parcel rates", "Parcel rates\nRates depend on the zone."),
        (
            "Parcel rates › table 1",
            "Rates per zone\nZone: 3; Rate: 4.50 EUR; Carrier: Borealis\n"
            "Zone: 7; Rate: 10.50 EUR; Carrier: Delta Route\n"
            "Zone: 7; Rate: no Sunday delivery; Carrier: no Sunday delivery",
        ),
        # A one-column table is a box around text: it stays text.
        ("Parcel rates", "A layout box around one note."),
    ]
    assert html[1][2]["heading"] == "Shipping › Parcel rates"
    docx = sections(folder / "rates.docx")
    assert [(location, text) for location, text, _ in docx] == [
        ("Parcel rates", "Parcel rates\nTable 2: Rates per zone"),
        (
            "Parcel rates › table 1",
            "Table 2: Rates per zone\nZone: 3; Rate: 4.50 EUR; Carrier: Borealis\n"
            "Zone: 4; Rate: 6.00 EUR; Carrier: Cygnus",
        ),
        ("Parcel rates", "Rates are reviewed every January."),
    ]


@pytest.fixture(scope="module")
def splitter(bot: Assistant) -> TokenSplitter:
    return bot.index.splitter(bot.embeddings("handbook"))  # the real embedder's tokenizer and chunk size


def test_a_table_bigger_than_a_chunk_is_split_between_rows(folder: Path, splitter: TokenSplitter) -> None:
    data = (folder / "big_rates.pdf").read_bytes()
    found = parse("pdf", folder / "big_rates.pdf", data, DocumentSettings(), [])
    tables = [s for s in found if "table" in s.metadata]
    # 90 rows run over three pages; fpdf2 repeats the header row on each, read as the header again.
    assert [s.metadata["location"] for s in tables] == ["page 1 › table 1", "page 2 › table 1", "page 3 › table 1"]
    rows = [line for s in tables for line in s.page_content.splitlines() if line.startswith("Zone: ")]
    assert rows == [f"Zone: {z}; Rate: {r}; Delivery days: {d}; Carrier: {c}" for z, r, d, c in rate_rows(90)]
    chunks = splitter.split(tables, "big_rates.pdf")
    assert len(chunks) > len(tables)  # the table is bigger than a chunk
    pieces_rows: list[str] = []
    for chunk in chunks:
        lines = chunk.page_content.splitlines()
        assert splitter.count_tokens(chunk.page_content) <= splitter.chunk_tokens
        assert chunk.metadata["table"] == "table 1" and chunk.metadata["location"].endswith("› table 1")
        assert isinstance(chunk.metadata["page"], int)
        # Only page 1's table has the caption above it; every piece of it starts with it.
        if chunk.metadata["page"] == 1:
            assert lines[0] == CAPTION
        pieces_rows += [line for line in lines if line != CAPTION]
    assert pieces_rows == rows  # every row whole, once, in order: no row cut, none repeated


def test_only_a_row_longer_than_a_chunk_is_cut(splitter: TokenSplitter) -> None:
    from retrievers.tables import table_section

    long_note = " ".join(f"clause {n} applies to fragile parcels;" for n in range(80))
    rows = [["1", "none"], ["2", long_note], ["3", "none"]]
    made = table_section(["Zone", "Note"], rows, "page 1 › table 1", "table 1", caption="Notes")
    assert made is not None
    chunks = splitter.split([made], "notes.pdf")
    texts = [c.page_content for c in chunks]
    assert texts[0] == "Notes\nZone: 1; Note: none"
    assert texts[-1] == "Notes\nZone: 3; Note: none"
    middle = texts[1:-1]
    assert len(middle) >= 2 and all(t.startswith("Notes\n") for t in middle)
    assert middle[0].startswith("Notes\nZone: 2; Note: clause 0 applies")


def test_corrupt_pdf_gives_a_clear_reason(folder: Path) -> None:
    with pytest.raises(InputFileError, match=r"broken\.pdf: is not a readable PDF \(.+\); re-export it"):
        sections(folder / "broken.pdf")


@pytest.fixture(scope="module")
def indexed(bot: Assistant, folder: Path) -> Iterator[Assistant]:
    report = bot.ingest(folder, collection="tables")
    assert {issue.path: issue.reason for issue in report.files_failed}.keys() == {"broken.pdf"}
    assert "is not a readable PDF" in report.files_failed[0].reason
    yield bot
    # The session's assistant is shared: other tests count on "handbook" being its only collection.
    bot.delete_collection("tables")


def test_a_cell_question_finds_its_row_first(indexed: Assistant) -> None:
    found = indexed.search("what is the rate for zone 3?", collection="tables", k=5)
    top = found[0]
    assert top.metadata["source"] in ("rates.pdf", "rates.html", "rates.docx")
    assert "Zone: 3; Rate: 4.50 EUR" in top.page_content
    pdf = next(d for d in found if d.metadata["source"] == "rates.pdf")
    assert pdf.metadata["location"] == "page 1 › table 1" and pdf.metadata["table"] == "table 1"
    assert "Zone: 3; Rate: 4.50 EUR" in pdf.page_content
    # In the 90-zone tariff, split over many chunks, the piece holding zone 47 comes first.
    big = indexed.search("big_rates: rate for zone 47", collection="tables", k=8)
    first = next(d for d in big if d.metadata["source"] == "big_rates.pdf")
    assert "Zone: 47; Rate: 70.50 EUR" in first.page_content


@pytest.mark.llm
def test_the_model_answers_a_cell_question_citing_the_row(indexed: Assistant) -> None:
    reply = indexed.ask("What is the rate for zone 3?", user_id="tables", session_id="cell", collection="tables")
    top = reply.sources[0]
    assert top.location.endswith("table 1"), reply.sources
    assert "Zone: 3; Rate: 4.50 EUR" in top.snippet or "Zone: 3; Rate: 4.50 EUR" in reply.evidence
    assert "4.50" in reply.evidence, reply.evidence  # the cell, quoted under the answer
    assert "4.50" in reply.answer, reply.answer
    # The row is quoted, not the table run together: no other zone's rate in the quote.
    others = {rate for _, rate, _, _ in rate_rows(12) if rate != "4.50 EUR"}
    assert not [rate for rate in others if rate in reply.evidence], reply.evidence


def test_a_table_row_is_a_sentence_of_its_own() -> None:
    from retrievers.words import sentences

    rows = [row_line(HEADER, row) for row in rate_rows(3)]
    assert sentences("\n".join(["Parcel rates per zone", *rows])) == ["Parcel rates per zone", *rows]
