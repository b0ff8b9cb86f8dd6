"""Reading printed receipts offline, end to end (rapidocr + the layout parser)."""

from __future__ import annotations

from typing import Any

import pytest

from helpline.receipts import ReceiptReadError, read_receipt
from tests.conftest import RECEIPTS_DIR, rendered_receipts


@pytest.mark.parametrize("label", rendered_receipts(), ids=lambda label: label["file"])
async def test_a_printed_receipt_reads_as_printed(label: dict[str, Any]) -> None:
    # The layouts differ (columns, quantity first, a unit-price row, comma decimals), and
    # each is tilted and speckled; labels.json holds what was printed on each.
    path = RECEIPTS_DIR / label["file"]
    mime = "image/png" if path.suffix == ".png" else "image/jpeg"
    progress: list[str] = []

    receipt = await read_receipt(path.read_bytes(), mime, on_progress=progress.append)

    assert receipt.date == label["date"]
    assert receipt.currency == label["currency"]
    assert receipt.total_in_cents == label["total_in_cents"]
    assert [item.model_dump() for item in receipt.items] == label["items"]
    assert progress == ["Reading the text…", "Finding the total…"]


async def test_not_an_image_is_a_clear_error() -> None:
    with pytest.raises(ReceiptReadError, match="JPEG or PNG"):
        await read_receipt(b"%PDF-1.7 not a picture", "application/pdf")
