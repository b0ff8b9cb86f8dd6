"""A receipt that shows no currency is read in the business's own currency (its profile's)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from helpline.messages import ToolCall
from helpline.receipts.ocr import OcrLine
from helpline.receipts.parser import parse_receipt
from helpline.store import Store
from helpline.support import support_tools
from helpline.support.profile import DEFAULT_PROFILE, load_profile
from helpline.tools import ToolContext, Toolset

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _plain_receipt() -> bytes:
    """A till slip with prices but no currency sign, code or shop address."""
    image = Image.new("RGB", (640, 360), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 34) if FONT.is_file() else ImageFont.load_default()
    for row, (left, right) in enumerate(
        [("CORNER SHOP", ""), ("TEA", "2.50"), ("SCONE", "3.00"), ("TOTAL", "5.50")]
    ):
        draw.text((40, 40 + row * 70), left, fill="black", font=font)
        draw.text((460, 40 + row * 70), right, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_the_parser_takes_the_callers_currency_when_the_receipt_shows_none() -> None:
    def slip(total: str) -> list[OcrLine]:
        return [OcrLine("TOTAL", 20, 40, 70, 60, 0.99), OcrLine(total, 280, 40, 340, 60, 0.99)]

    assert parse_receipt(slip("5.50"), "GBP").currency == "GBP"
    assert parse_receipt(slip("5.50"), "EUR").currency == "EUR"
    assert parse_receipt(slip("RM 5.50"), "GBP").currency == "MYR"  # what it shows wins


@pytest.mark.parametrize(("profile", "currency"), [("electronics", "GBP"), ("default", "EUR")])
async def test_the_receipt_tool_reads_amounts_in_the_profiles_currency(
    sqlite_store: Store, tmp_path: Path, profile: str, currency: str
) -> None:
    photo = tmp_path / "slip.png"
    photo.write_bytes(_plain_receipt())
    tools = support_tools(load_profile(DEFAULT_PROFILE.parent / profile))
    conversation_id = sqlite_store.conversations.create()
    context = ToolContext(conversation_id, "call_1", sqlite_store, local_files_allowed=True)
    call = ToolCall.make("call_1", "analyze_receipt_image", json.dumps({"image_url": str(photo)}))
    result = json.loads(await Toolset(tools).call(call, context))
    assert result["total_in_cents"] == 550
    assert result["currency"] == currency
