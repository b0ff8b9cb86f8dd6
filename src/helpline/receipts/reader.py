"""One entry point for reading a receipt: a vision model when there is one, offline OCR otherwise."""

from __future__ import annotations

from collections.abc import Callable

import anyio.to_thread

from helpline.models.base import ChatModel
from helpline.receipts.schema import Receipt
from helpline.receipts.vision import read_receipt_with_model

Progress = Callable[[str], None]


async def read_receipt(
    image: bytes,
    mime: str,
    model: ChatModel | None = None,
    on_progress: Progress | None = None,
    default_currency: str | None = None,
) -> Receipt:
    """Read ``image`` (JPEG/PNG bytes of type ``mime``) into a validated ``Receipt``.

    With ``model``, a vision model reads it; without, rapidocr and the layout parser
    do, in a worker thread so the event loop stays responsive. ``on_progress`` gets
    short messages for the person waiting. ``default_currency`` (the business's) is the
    currency of a receipt that shows none. Raises ``ReceiptReadError`` (customer-safe
    message) when the picture cannot be read.
    """
    report = on_progress or _silent
    if model is not None:
        report("Reading the receipt…")
        return await read_receipt_with_model(model, image, mime)

    from helpline.receipts import ocr, parser

    report("Reading the text…")
    lines = await anyio.to_thread.run_sync(ocr.recognise, image)
    report("Finding the total…")
    return parser.parse_receipt(lines, default_currency or parser.DEFAULT_CURRENCY)


def _silent(message: str) -> None:
    """Progress goes nowhere when nobody is watching."""
