"""Office formats on a real ingestion: XLSX, PPTX, EML (with attachments), MBOX, EPUB and
ODT, each written in the test by the library that writes it, detected by content, cited
by sheet and row, slide, subject or attachment; corrupt files of each kind are reported
by name with a reason, and never cost the index what it already held."""

from __future__ import annotations

import io
import mailbox
import re
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from assistant import Assistant, InputFileError, Settings
from assistant.settings import DocumentSettings
from retrievers.detect import detect_kind
from retrievers.loaders import parse
from retrievers.report import IngestReport
from tests.helpers import chroma_rows, index_content
from tests.samples import write_docx, write_pdf

OPTIONS = DocumentSettings()


# --- documents, written by the libraries that write them for real ---------------------------


def xlsx_bytes(*, cached_formula: bool = True) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    rates = book.active
    assert rates is not None
    rates.title = "Freight rates"
    rates.append(["Zone", "Rate per kg", "Transit days"])
    rates.append([1, "2.10 EUR", 1])
    rates.append([3, "4.50 EUR", 2])
    rates.append([7, "=1+1", 5])  # a formula: its cached value (written below) is what is read
    book.create_sheet("Empty")
    hidden = book.create_sheet("Vault codes")
    hidden.sheet_state = "hidden"
    hidden.append(["Site", "Vault code"])
    hidden.append(["Lisbon depot", "QX-4471"])
    out = io.BytesIO()
    book.save(out)
    if not cached_formula:
        return out.getvalue()
    # openpyxl writes no cached value for a formula (Excel does when it saves): add one.
    return _rewrite_member(out.getvalue(), "xl/worksheets/sheet1.xml", b"<f>1+1</f><v></v>", b"<f>1+1</f><v>9.75</v>")


def _rewrite_member(data: bytes, name: str, old: bytes, new: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == name:
                assert old in content, content[-400:]
                content = content.replace(old, new)
            target.writestr(item, content)
    return out.getvalue()


def write_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    intro = deck.slides.add_slide(deck.slide_layouts[0])
    assert intro.shapes.title is not None
    intro.shapes.title.text = "Quarterly review"
    pricing = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    assert pricing.shapes.title is not None
    pricing.shapes.title.text = "Pricing"
    box = pricing.shapes.add_textbox(Inches(1), Inches(1.5), Inches(6), Inches(1))
    box.text_frame.text = "The Gold support plan costs 990 EUR per year."
    table = pricing.shapes.add_table(3, 2, Inches(1), Inches(3), Inches(6), Inches(1.5)).table
    for r, row in enumerate([("Plan", "Response time"), ("Silver", "8 hours"), ("Platinum", "45 minutes")]):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    group = pricing.shapes.add_group_shape()
    grouped = group.shapes.add_textbox(Inches(1), Inches(5), Inches(6), Inches(0.5))
    grouped.text_frame.text = "Prices exclude VAT."
    pricing.notes_slide.notes_text_frame.text = "Remind customers that the discount code SPRING26 ends in May."
    deck.save(str(path))
    return path


def email_with_attachments(tmp_path: Path) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ana Ferreira <ana.ferreira@example.org>"
    message["To"] = "support@example.org"
    message["Subject"] = "Boiler B4 inspection"
    message["Date"] = "Tue, 03 Nov 2026 09:15:00 +0000"
    message.set_content("The boiler B4 inspection is booked for 12 November at 07:30.\n")
    pdf = write_pdf(tmp_path / "tariff.pdf", ["The night tariff for boiler B4 is 0.19 EUR per kWh."])
    message.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename="tariff.pdf")
    docx = write_docx(tmp_path / "pump.docx")
    message.add_attachment(
        docx.read_bytes(),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="pump.docx",
    )
    message.add_attachment(
        b"inspector,phone\nLuis Mota,+351 210 555 018\n", maintype="text", subtype="csv", filename="contacts.csv"
    )
    # Corrupt: claims to be a PDF. The message and its other attachments still index.
    message.add_attachment(b"%PDF-1.7 cut short", maintype="application", subtype="pdf", filename="broken.pdf")
    return message


def write_mbox(path: Path) -> Path:
    box = mailbox.mbox(str(path))
    first = EmailMessage()
    first["From"] = "Carla Dias <carla@example.org>"
    first["Subject"] = "Canteen menu"
    first["Date"] = "Mon, 02 Nov 2026 08:00:00 +0000"
    first.set_content("Soup of the week is pumpkin.\n")
    second = EmailMessage()
    second["From"] = "Rui Costa <rui@example.org>"
    second["Subject"] = "Parking garage closure"
    second["Date"] = "Wed, 04 Nov 2026 16:40:00 +0000"
    second.set_content(
        "<html><body><p>The parking garage on level -2 is closed on <b>Friday</b>.</p></body></html>", subtype="html"
    )
    for message in (first, second):
        box.add(message)
    box.flush()
    box.close()
    return path


def write_epub(path: Path) -> Path:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("handbook-1")
    book.set_title("Warehouse handbook")
    book.set_language("en")
    first = epub.EpubHtml(title="Arrival", file_name="arrival.xhtml")
    first.content = "<h1>Arrival</h1><p>Visitors sign in at gate C.</p>"
    second = epub.EpubHtml(title="Forklifts", file_name="forklifts.xhtml")
    second.content = "<h1>Forklifts</h1><h2>Charging</h2><p>Forklift batteries charge in bay 12 overnight.</p>"
    for chapter in (first, second):
        book.add_item(chapter)
    book.toc = [first, second]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", first, second]
    epub.write_epub(str(path), book)
    return path


def write_odt(path: Path) -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, P

    document = OpenDocumentText()
    document.text.addElement(H(outlinelevel=1, text="Travel policy"))
    document.text.addElement(H(outlinelevel=2, text="Per diem"))
    document.text.addElement(P(text="Staff travelling abroad receive a per diem of 62 EUR."))
    document.text.addElement(H(outlinelevel=2, text="Mileage"))
    table = Table(name="Mileage")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for cells in (("Vehicle", "Rate per km"), ("Car", "0.36 EUR"), ("Motorbike", "0.21 EUR")):
        row = TableRow()
        for text in cells:
            cell = TableCell()
            cell.addElement(P(text=text))
            row.addElement(cell)
        table.addElement(row)
    document.text.addElement(table)
    document.save(str(path))
    return path


def write_office_folder(folder: Path, scratch: Path) -> Path:
    folder.mkdir(parents=True)
    scratch.mkdir(parents=True)
    (folder / "rates.xlsx").write_bytes(xlsx_bytes())
    write_pptx(folder / "review.pptx")
    (folder / "inspection.eml").write_bytes(email_with_attachments(scratch).as_bytes())
    write_mbox(folder / "team.mbox")
    write_epub(folder / "handbook.epub")
    write_odt(folder / "travel.odt")
    return folder


CORRUPT = {
    "cut.xlsx": lambda: xlsx_bytes()[:700],  # a ZIP cut short
    "locked.xlsx": lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),  # an encrypted Office file is OLE
    "cut.pptx": lambda: b"PK\x03\x04" + bytes(300),
    "notes.pptx": lambda: b"Just some notes, saved with the wrong extension.\n",
    "binary.eml": lambda: bytes(range(256)) * 4,
    "plain.mbox": lambda: b"Not a mailbox: no From line.\nJust text.\n",
    "cut.epub": lambda: b"PK\x03\x04\x14\x00" + bytes(100),
    "drm.epub": lambda: _zip({"mimetype": b"application/epub+zip", "META-INF/encryption.xml": b"<encryption/>"}),
    "cut.odt": lambda: _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office:"}),
    "locked.odt": lambda: _zip(
        {
            "mimetype": b"application/vnd.oasis.opendocument.text",
            "META-INF/manifest.xml": b'<manifest:file-entry manifest:full-path="content.xml">'
            b"<manifest:encryption-data/></manifest:file-entry>",
            "content.xml": bytes(range(256)),
        }
    ),
}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def sections(path: Path) -> list[tuple[str, str]]:
    data = path.read_bytes()
    return [(d.metadata["location"], d.page_content) for d in parse(detect_kind(path, data), path, data, OPTIONS)]


# --- parsing ---------------------------------------------------------------------------------


def test_each_kind_is_detected_by_content_whatever_its_name(tmp_path: Path) -> None:
    folder = write_office_folder(tmp_path / "docs", tmp_path / "scratch")
    expected = {
        "rates.xlsx": "xlsx",
        "review.pptx": "pptx",
        "inspection.eml": "eml",
        "team.mbox": "mbox",
        "handbook.epub": "epub",
        "travel.odt": "odt",
    }
    for name, kind in expected.items():
        data = (folder / name).read_bytes()
        assert detect_kind(Path(name), data) == kind
        assert detect_kind(Path("renamed.txt" if kind in ("eml", "mbox") else "renamed.docx"), data) == kind
        assert detect_kind(Path("no_extension"), data) == kind
    # A Markdown file that starts with header-like lines stays Markdown.
    assert detect_kind(Path("post.md"), b"From: the team\nDate: today\n\n# News\n") == "md"
    for name, make in CORRUPT.items():
        claimed = name.rsplit(".", 1)[1]
        assert detect_kind(Path(name), make()) == claimed, name


def test_xlsx_rows_carry_their_header_sheet_and_row(tmp_path: Path) -> None:
    path = tmp_path / "rates.xlsx"
    path.write_bytes(xlsx_bytes())
    assert sections(path) == [
        ("Freight rates › row 2", "Zone: 1; Rate per kg: 2.10 EUR; Transit days: 1"),
        ("Freight rates › row 3", "Zone: 3; Rate per kg: 4.50 EUR; Transit days: 2"),
        ("Freight rates › row 4", "Zone: 7; Rate per kg: 9.75; Transit days: 5"),  # the formula's cached value
        ("Vault codes › row 2", "Site: Lisbon depot; Vault code: QX-4471"),  # a hidden sheet is read
    ]
    # A sheet that declares a wrong size ("A1", as some writers do) is still read whole.
    wrong = tmp_path / "wrong-size.xlsx"
    wrong.write_bytes(
        _rewrite_member(
            path.read_bytes(), "xl/worksheets/sheet1.xml", b'<dimension ref="A1:C4"/>', b'<dimension ref="A1"/>'
        )
    )
    assert sections(wrong) == sections(path)


def test_formulas_stored_without_a_value_are_named_not_dropped(tmp_path: Path) -> None:
    """openpyxl (and pandas) write formulas without computing them: the cells read as empty,
    so the file is indexed and the cells are named in a note."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "North America"
    sheet.append(["Plan", "Monthly price", "Yearly price"])
    sheet.append(["Enterprise", 279, "=B2*12"])
    sheet.append(["Team", 99, 1188])
    path = tmp_path / "prices.xlsx"
    book.save(path)
    notes: list[str] = []
    got = parse("xlsx", path, path.read_bytes(), DocumentSettings(), notes)
    assert [s.page_content for s in got] == [
        "Plan: Enterprise; Monthly price: 279",
        "Plan: Team; Monthly price: 99; Yearly price: 1188",
    ]
    assert len(notes) == 1 and notes[0].startswith("1 formula cell (C2) hold no saved value"), notes
    assert "open and save it in Excel or LibreOffice" in notes[0]


def test_an_empty_email_is_named_as_empty(tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="is empty: no message in it"):
        parse("eml", empty, b"", DocumentSettings(), [])


def test_pptx_slides_tables_and_speaker_notes(tmp_path: Path) -> None:
    got = sections(write_pptx(tmp_path / "review.pptx"))
    assert got == [
        ("slide 1 › Quarterly review", "Quarterly review"),
        (
            "slide 2 › Pricing",
            "Pricing\nThe Gold support plan costs 990 EUR per year.\nPrices exclude VAT.\n"
            "Speaker notes: Remind customers that the discount code SPRING26 ends in May.",
        ),
        (
            "slide 2 › Pricing › table 1",
            "Plan: Silver; Response time: 8 hours\nPlan: Platinum; Response time: 45 minutes",
        ),
    ]


def test_email_headers_body_and_attachments_as_documents(tmp_path: Path) -> None:
    path = tmp_path / "inspection.eml"
    path.write_bytes(email_with_attachments(tmp_path).as_bytes())
    data = path.read_bytes()
    notes: list[str] = []
    docs = parse("eml", path, data, OPTIONS, notes)
    got = {d.metadata["location"]: d for d in docs}
    message = got["Boiler B4 inspection"].page_content
    assert message.startswith(
        "From: Ana Ferreira <ana.ferreira@example.org>\nTo: support@example.org\n"
        "Date: Tue, 03 Nov 2026 09:15:00 +0000\nSubject: Boiler B4 inspection\n\n"
    )
    assert "booked for 12 November at 07:30" in message
    pdf = got["attachment tariff.pdf › page 1"]
    assert "0.19 EUR per kWh" in pdf.page_content and pdf.metadata["attachment"] == "tariff.pdf"
    assert pdf.metadata["page"] == 1
    assert "Tighten the anchor bolts to 45 Nm." in got["attachment pump.docx › Installation › Torque"].page_content
    assert got["attachment contacts.csv › row 1"].page_content == "inspector: Luis Mota\nphone: +351 210 555 018"
    assert len(notes) == 1 and notes[0].startswith("attachment broken.pdf: left out, it is not a readable PDF ("), notes
    assert "broken.pdf" not in " ".join(got)


def test_mbox_messages_and_html_bodies(tmp_path: Path) -> None:
    got = dict(sections(write_mbox(tmp_path / "team.mbox")))
    assert list(got) == ["message 1 › Canteen menu", "message 2 › Parking garage closure"]
    head, body = got["message 2 › Parking garage closure"].split("\n\n")
    assert head == (
        "From: Rui Costa <rui@example.org>\nDate: Wed, 04 Nov 2026 16:40:00 +0000\nSubject: Parking garage closure"
    )
    # The HTML body as text (no tags), through the project's HTML parser.
    assert re.fullmatch(r"The parking garage on level -2 is closed on Friday ?\.", body), body


def test_attachments_nested_too_deep_are_named(tmp_path: Path) -> None:
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "a@example.org", "Level 5"
    inner.set_content("Deepest text.")
    for level in (4, 3, 2, 1):
        outer = EmailMessage()
        outer["From"], outer["Subject"] = "a@example.org", f"Level {level}"
        outer.set_content(f"Text of level {level}.")
        outer.add_attachment(inner)
        inner = outer
    notes: list[str] = []
    docs = parse("eml", tmp_path / "deep.eml", inner.as_bytes(), OPTIONS, notes)
    attached = "attachment message.eml › "
    assert [d.metadata["location"] for d in docs] == [
        "Level 1",
        f"{attached}Level 2",
        f"{attached * 2}Level 3",
        f"{attached * 3}Level 4",
    ]
    assert notes == [f"{attached * 3}attachment message.eml: left out, nested more than 3 messages deep"]


def test_epub_chapters_in_reading_order_and_odt_headings_and_tables(tmp_path: Path) -> None:
    assert sections(write_epub(tmp_path / "handbook.epub")) == [
        ("Arrival", "Arrival\nVisitors sign in at gate C."),
        ("Forklifts › Charging", "Charging\nForklift batteries charge in bay 12 overnight."),
    ]
    assert sections(write_odt(tmp_path / "travel.odt")) == [
        ("Per diem", "Per diem\nStaff travelling abroad receive a per diem of 62 EUR."),
        (
            "Mileage › table 1",
            "Vehicle: Car; Rate per km: 0.36 EUR\nVehicle: Motorbike; Rate per km: 0.21 EUR",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("cut.xlsx", r"is not a readable XLSX \(.+\); re-save it from Excel"),
        ("locked.xlsx", r"is password-protected or in the older binary format .*save a copy without a password"),
        ("cut.pptx", r"is not a readable PPTX \(.+\); re-save it from PowerPoint"),
        ("notes.pptx", r"is not a readable PPTX \(it is not a ZIP package\)"),
        ("binary.eml", r"is not a readable e-mail message \(no From, To, Subject or Date header"),
        ("plain.mbox", r'is not a readable MBOX mailbox \(it does not start with a "From " line\)'),
        ("cut.epub", r"is not a readable EPUB \(.+\)"),
        ("drm.epub", r"is an encrypted \(DRM-protected\) EPUB"),
        ("cut.odt", r"is not a readable ODT \(.+\); re-save it from LibreOffice Writer"),
        ("locked.odt", r"is password-protected; save a copy without a password from LibreOffice Writer"),
    ],
)
def test_corrupt_files_raise_a_reason_naming_the_format(tmp_path: Path, name: str, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(CORRUPT[name]())
    with pytest.raises(InputFileError, match=reason) as raised:
        sections(path)
    assert raised.value.path == str(path)


# --- a real ingestion ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> tuple[Assistant, IngestReport, Path]:
    root = tmp_path_factory.mktemp("office")
    folder = write_office_folder(root / "docs", root / "scratch")
    # Wrong or missing extensions: detected by content.
    (folder / "budget.dat").write_bytes(xlsx_bytes())
    write_pptx(root / "scratch" / "deck.pptx").rename(folder / "deck.docx")
    for name, make in CORRUPT.items():
        (folder / name).write_bytes(make())
    bot = Assistant.from_settings(Settings(data_dir=root / "state"))
    return bot, bot.ingest(folder, "office"), folder


def test_every_office_kind_is_indexed_and_named_in_the_report(office: tuple[Assistant, IngestReport, Path]) -> None:
    bot, report, _ = office
    assert report.kinds == {"xlsx": 2, "pptx": 2, "eml": 1, "mbox": 1, "epub": 1, "odt": 1}
    summary = report.summary()
    for kind in ("2 xlsx", "2 pptx", "1 eml", "1 mbox", "1 epub", "1 odt"):
        assert kind in summary, summary
    cited = {(source, location) for source, location, _ in chroma_rows(bot, "office").values()}
    assert {
        ("rates.xlsx", "Freight rates › row 3"),
        ("budget.dat", "Freight rates › row 3"),
        ("review.pptx", "slide 2 › Pricing"),
        ("deck.docx", "slide 2 › Pricing › table 1"),
        ("inspection.eml", "Boiler B4 inspection"),
        ("inspection.eml", "attachment tariff.pdf › page 1"),
        ("inspection.eml", "attachment contacts.csv › row 1"),
        ("team.mbox", "message 2 › Parking garage closure"),
        ("handbook.epub", "Forklifts › Charging"),
        ("travel.odt", "Mileage › table 1"),
    } <= cited


@pytest.mark.parametrize(
    ("question", "sources", "location", "fact"),
    [
        (
            "What is the freight rate per kg for zone 3?",
            {"rates.xlsx", "budget.dat"},
            "Freight rates › row 3",
            "4.50 EUR",
        ),
        ("What is the vault code of the Lisbon depot?", {"rates.xlsx", "budget.dat"}, "Vault codes › row 2", "QX-4471"),
        ("How much does the Gold support plan cost?", {"review.pptx", "deck.docx"}, "slide 2 › Pricing", "990 EUR"),
        ("Which discount code ends in May?", {"review.pptx", "deck.docx"}, "slide 2 › Pricing", "SPRING26"),
        (
            "Who wrote about the boiler B4 inspection and when?",
            {"inspection.eml"},
            "Boiler B4 inspection",
            "Ana Ferreira",
        ),
        (
            "What is the night tariff for boiler B4 per kWh?",
            {"inspection.eml"},
            "attachment tariff.pdf › page 1",
            "0.19 EUR",
        ),
        (
            "What is the phone number of inspector Luis Mota?",
            {"inspection.eml"},
            "attachment contacts.csv › row 1",
            "210 555 018",
        ),
        ("When is the parking garage closed?", {"team.mbox"}, "message 2 › Parking garage closure", "Friday"),
        ("Where do forklift batteries charge?", {"handbook.epub"}, "Forklifts › Charging", "bay 12"),
        ("What is the mileage rate per km for a car?", {"travel.odt"}, "Mileage › table 1", "0.36 EUR"),
    ],
)
def test_search_finds_the_fact_and_cites_where_it_is(
    office: tuple[Assistant, IngestReport, Path], question: str, sources: set[str], location: str, fact: str
) -> None:
    bot, _, _ = office
    top = bot.retriever("office").search(question)[0]
    assert (top.source in sources, top.location, fact in top.text) == (True, location, True), top


def test_corrupt_files_are_reported_one_by_one_and_the_rest_indexed(
    office: tuple[Assistant, IngestReport, Path],
) -> None:
    bot, report, _ = office
    failed = {issue.path: issue.reason for issue in report.files_failed}
    assert set(failed) == set(CORRUPT), failed
    assert "not a readable XLSX" in failed["cut.xlsx"] and "password-protected" in failed["locked.xlsx"]
    assert "not a readable PPTX" in failed["cut.pptx"] and "not a readable PPTX" in failed["notes.pptx"]
    assert "not a readable e-mail message" in failed["binary.eml"]
    assert "not a readable MBOX" in failed["plain.mbox"]
    assert "not a readable EPUB" in failed["cut.epub"] and "DRM" in failed["drm.epub"]
    assert "not a readable ODT" in failed["cut.odt"] and "password-protected" in failed["locked.odt"]
    assert report.files_skipped == []
    partial = {issue.path: issue.reason for issue in report.files_partial}
    assert set(partial) == {"inspection.eml"} and "attachment broken.pdf" in partial["inspection.eml"]
    indexed = {source for source, _, _ in chroma_rows(bot, "office").values()}
    assert indexed == {
        "rates.xlsx",
        "budget.dat",
        "review.pptx",
        "deck.docx",
        "inspection.eml",
        "team.mbox",
        "handbook.epub",
        "travel.odt",
    }


def test_a_corrupt_new_version_keeps_what_was_indexed(tmp_path: Path) -> None:
    folder = write_office_folder(tmp_path / "docs", tmp_path / "scratch")
    bot = Assistant.from_settings(Settings(data_dir=tmp_path / "state"))
    first = bot.ingest(folder, "keep")
    assert first.files_failed == [] and first.files_new == 6
    before = index_content(bot, "keep")
    corrupt = {
        "rates.xlsx": CORRUPT["cut.xlsx"](),
        "review.pptx": CORRUPT["cut.pptx"](),
        "inspection.eml": CORRUPT["binary.eml"](),
        "team.mbox": CORRUPT["plain.mbox"](),
        "handbook.epub": CORRUPT["cut.epub"](),
        "travel.odt": CORRUPT["cut.odt"](),
    }
    for name, data in corrupt.items():
        (folder / name).write_bytes(data)
    second = bot.ingest(folder, "keep")
    assert {issue.path for issue in second.files_failed} == set(corrupt)
    assert index_content(bot, "keep") == before
    top = bot.retriever("keep").search("What is the freight rate per kg for zone 3?")[0]
    assert top.citation == "rates.xlsx › Freight rates › row 3" and "4.50 EUR" in top.text
