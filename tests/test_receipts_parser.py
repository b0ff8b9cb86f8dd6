"""The layout parser on synthetic OCR lines: rows, totals, dates, currencies, items."""

from __future__ import annotations

import pytest

from helpline.receipts.ocr import OcrLine
from helpline.receipts.parser import (
    amounts_in,
    find_date,
    group_rows,
    infer_currency,
    parse_date,
    parse_receipt,
)
from helpline.receipts.schema import ReceiptReadError


def receipt(*rows: str | tuple[str, ...], tilt: float = 0.0, height: float = 20) -> list[OcrLine]:
    """OCR lines for printed rows: a string is one box; a tuple puts boxes in columns ("" skips one)."""
    lines = []
    for number, row in enumerate(rows):
        cells = (row,) if isinstance(row, str) else row
        for column, text in enumerate(cells):
            if not text:
                continue
            x0 = 20.0 + column * 260
            y0 = 40.0 + number * 30 + tilt * x0
            lines.append(OcrLine(text, x0, y0, x0 + 10 * len(text), y0 + height, 0.99))
    return lines


def test_rows_follow_a_tilted_page() -> None:
    # The amounts sit 18 px lower than their labels: level matching would miss them.
    lines = receipt(
        ("Sub Total", "", "15.00"),
        ("Discount", "", "0.00"),
        ("Total Incl. GST", "", "15.00"),
        ("Rounding", "", "0.00"),
        tilt=0.035,
    )
    assert [row.text for row in group_rows(lines)] == [
        "Sub Total 15.00",
        "Discount 0.00",
        "Total Incl. GST 15.00",
        "Rounding 0.00",
    ]


def test_total_is_not_cash_change_or_subtotal() -> None:
    lines = receipt(
        "ACME TRADING SDN BHD",
        ("Date", "25/12/2018"),
        ("Sub Total", "80.91"),
        ("Total GST", "0.00"),
        ("Rounding", "-0.01"),
        ("Total Sales (Inclusive of GST)", "80.90"),
        ("CASH", "100.00"),
        ("Change", "19.10"),
        "GST SUMMARY",
        ("Tax Code", "Amt (RM)", "Tax(RM)"),
        ("Total:", "80.91", "0.00"),
    )
    assert parse_receipt(lines).total_in_cents == 8090


def test_rounded_total_beats_the_total_before_rounding() -> None:
    lines = receipt(
        ("Total RM Incl. of GST", "31.47"),
        ("Rounding Adj", "-0.02"),
        ("Total RM", "31.45"),
    )
    assert parse_receipt(lines).total_in_cents == 3145


def test_cash_minus_change_settles_an_ambiguous_total() -> None:
    lines = receipt(
        ("Total Sales (Inclusive GST) RM", "72.74"),
        ("Rounding Adjustment RM", "01"),
        ("Rounded RM", "72.75"),
        ("CASH RM", "100.00"),
        ("CHANGE RM", "27.25"),
    )
    assert parse_receipt(lines).total_in_cents == 7275


def test_gst_inclusive_total_counts_but_a_tax_note_does_not() -> None:
    lines = receipt(
        ("GDN HAND WASH", "5.90"),
        ("GDN HAND WASH", "5.90"),
        ("TOTAL (GST INCL)", "12.00"),
        ("GST 6% included in total", "RM 0.68"),
    )
    assert parse_receipt(lines).total_in_cents == 1200


def test_no_amount_at_all_is_a_clear_error() -> None:
    with pytest.raises(ReceiptReadError, match="photo of the whole receipt"):
        parse_receipt(receipt("THANK YOU", "PLEASE COME AGAIN"))


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("RM1,234.50", [123450]),
        ("$8.20", [820]),
        ("-0.02", [-2]),
        ("Qty 2", []),
        ("15,00 EUR", [1500]),
    ],
)
def test_amounts(text: str, cents: list[int]) -> None:
    assert amounts_in(text) == cents


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("DATE: 25/12/2018 10:17", "2018-12-25"),
        ("12/28/2017 10:17:32 PM", "2017-12-28"),
        ("03 MAR 2018 18:22", "2018-03-03"),
        ("30-Mar-18", "2018-03-30"),
        ("2018-03-30 14:00", "2018-03-30"),
        ("30.03.18", "2018-03-30"),
        ("19-09-17 15:39", "2017-09-19"),
        ("6/4/2018", "2018-04-06"),
        ("Mar 30, 2018", "2018-03-30"),
        ("Tarikh: 4 Ogos 2018", "2018-08-04"),
    ],
)
def test_date_formats(text: str, iso: str) -> None:
    assert parse_date(text) == iso


@pytest.mark.parametrize(
    "text", ["HD03-04-06 5/40/160", "s= 6% 3.49 .21", "ORD #95 -REG #19-", "31/02/2018"]
)
def test_things_that_are_not_dates(text: str) -> None:
    assert parse_date(text) is None


def test_labelled_date_wins_and_month_first_receipts_stay_month_first() -> None:
    rows = group_rows(receipt(("Doc", "CS00031663"), ("Date", "04/05/2018"), "05/04/2018 12:00"))
    assert find_date(rows, "MYR") == "2018-05-04"
    us = group_rows(receipt(("Date", "04/05/2018"), "Printed 04/28/2018"))
    assert find_date(us, "MYR") == "2018-04-05"
    assert find_date(group_rows(receipt(("Date", "04/05/2018"))), "USD") == "2018-04-05"


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("Total RM 12.00", "MYR"),
        ("ACME SDN BHD\nTotal $8.20", "MYR"),
        ("Total S$ 8.20", "SGD"),
        ("ACME PTE LTD\nTotal $8.20", "SGD"),
        ("Grand total $8.20", "USD"),
        ("Summe 8,20 €", "EUR"),
        ("Total £4.50", "GBP"),
        ("Amount due 120.00 HKD", "HKD"),
        ("Total 12.00", "MYR"),
    ],
)
def test_currency(text: str, currency: str) -> None:
    assert infer_currency(text) == currency


def test_items_between_header_and_totals() -> None:
    lines = receipt(
        ("Item", "Qty", "Amount"),
        ("TEH ICE", "2", "7.00"),
        "NASI LEMAK",
        ("RM5.50", "1", "RM5.50"),
        ("Sub Total", "12.50"),
        ("Total", "12.50"),
    )
    parsed = parse_receipt(lines)
    assert [(i.name, i.quantity, i.price_in_cents) for i in parsed.items] == [
        ("TEH ICE", 2, 700),
        ("NASI LEMAK", 1, 550),
    ]
    assert parsed.currency == "MYR"


def test_a_vat_note_named_iva_is_not_the_total() -> None:
    # Portuguese, Spanish and Italian receipts call VAT "IVA"; "incl." must not make it final.
    lines = receipt(
        ("Espresso", "2,40"),
        ("TOTAL EUR", "14,20"),
        ("IVA 23% incl.", "2,66"),
        ("Multibanco", "14,20"),
    )
    assert parse_receipt(lines).total_in_cents == 1420
