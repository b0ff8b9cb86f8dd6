"""Reading real receipt scans offline, end to end (rapidocr + the layout parser)."""

from __future__ import annotations

import json

import pytest

from helpline.receipts import ReceiptReadError, read_receipt
from tests.conftest import RECEIPTS_DIR


def _labels() -> dict[str, dict[str, str]]:
    lines = (RECEIPTS_DIR / "labels.jsonl").read_text().splitlines()
    return {label["file"]: label for label in map(json.loads, lines)}


@pytest.mark.parametrize(
    ("file", "iso_date"),
    [
        ("sroie_003.jpg", "2018-12-25"),  # total beside cash, change and a GST summary
        ("sroie_013.jpg", "2017-12-28"),  # month-first date, curled paper
    ],
)
async def test_real_receipt_total_and_date(file: str, iso_date: str) -> None:
    label = _labels()[file]
    progress: list[str] = []

    receipt = await read_receipt(
        (RECEIPTS_DIR / file).read_bytes(), "image/jpeg", on_progress=progress.append
    )

    assert receipt.total_in_cents == round(float(label["total"]) * 100)
    assert receipt.date == iso_date
    assert receipt.currency == "MYR"
    assert progress == ["Reading the text…", "Finding the total…"]


async def test_not_an_image_is_a_clear_error() -> None:
    with pytest.raises(ReceiptReadError, match="JPEG or PNG"):
        await read_receipt(b"%PDF-1.7 not a picture", "application/pdf")
