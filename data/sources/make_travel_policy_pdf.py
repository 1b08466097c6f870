"""Regenerates handbook/travel_policy.pdf from the text below (needs fpdf2: pip install fpdf2).

The PDF is committed; this script documents where it came from and lets anyone edit it.
"""

from pathlib import Path

from fpdf import FPDF

PAGES = [
    (
        "Northwind Travel and Expense Policy",
        [
            (
                "1. Scope",
                "This policy applies to all Northwind employees who travel for business. "
                "Contractors follow the terms of their own contracts.",
            ),
            (
                "2. Approval",
                "Every business trip must be approved in advance by the employee's manager. "
                "Trips that cost more than 1,000 EUR in total must also be approved by a director.",
            ),
            (
                "3. Flights",
                "Book economy class for flights shorter than 6 hours. Business class is allowed "
                "for flights of 6 hours or longer. Flights must be booked at least 14 days before departure "
                "when possible.",
            ),
        ],
    ),
    (
        "Accommodation and meals",
        [
            (
                "4. Hotels",
                "The hotel limit is 180 EUR per night in most cities and 250 EUR per night in "
                "London, Paris, New York and Tokyo. Book hotels through the Northwind travel portal.",
            ),
            (
                "5. Meals",
                "The daily meal allowance (per diem) is 60 EUR for domestic trips and 80 EUR for "
                "international trips. Alcohol is never reimbursed.",
            ),
            (
                "6. Expense claims",
                "Submit expense claims with receipts within 30 days of returning from the "
                "trip. Claims submitted later than 90 days are not reimbursed.",
            ),
        ],
    ),
]


def main() -> None:
    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    for title, sections in PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        for heading, text in sections:
            pdf.ln(4)
            pdf.set_font("Helvetica", "B", 12)
            pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    out = Path(__file__).resolve().parents[1] / "handbook" / "travel_policy.pdf"
    pdf.output(str(out))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
