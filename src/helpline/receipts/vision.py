"""Read a receipt photo with a vision-capable chat model and structured output."""

from __future__ import annotations

import base64
import logging
from typing import Any

from pydantic import ValidationError

from helpline.messages import (
    AssistantMessage,
    ImagePart,
    ImageURL,
    SystemMessage,
    TextPart,
    UserMessage,
)
from helpline.models.base import ChatModel, ResponseFormat, StreamRestart, TextDelta
from helpline.receipts.schema import Receipt, ReceiptReadError, receipt_json_schema
from helpline.validation import describe_errors

SYSTEM_PROMPT = (
    "You read photos of shop and restaurant receipts into JSON. Copy what is printed; "
    "never guess a value that is not on the receipt. "
    "date: the purchase date as YYYY-MM-DD (day-first unless the receipt is clearly "
    "month-first), or null if none is printed. "
    "items: every purchased line with its name, quantity (1 if not shown) and line total "
    "in cents. "
    "currency: the ISO 4217 code (RM means MYR; a bare $ is USD unless the shop's address "
    "says otherwise). "
    "total_in_cents: the amount payable after tax and rounding, in cents; not the "
    "subtotal, not the cash tendered, not the change."
)
USER_PROMPT = "Read this receipt."
ATTEMPTS = 2
_LOGGED_ANSWER_CHARS = 300
"""Enough of an invalid answer for the operator to see what the model did."""

_log = logging.getLogger("helpline")


async def read_receipt_with_model(model: ChatModel, image: bytes, mime: str) -> Receipt:
    """Ask ``model`` to read the receipt in ``image`` and validate its answer.

    An answer that does not validate is logged for the operator (what failed) and sent back
    once with the validation error so the model can correct it; a second invalid answer
    raises ``ReceiptReadError``.
    Errors of the model itself (``ModelError``) propagate unchanged.
    """
    url = f"data:{mime};base64,{base64.b64encode(image).decode('ascii')}"
    messages = [
        SystemMessage(content=SYSTEM_PROMPT).to_wire(),
        UserMessage(
            content=[
                TextPart(text=USER_PROMPT),
                ImagePart(image_url=ImageURL(url=url, detail="high")),
            ]
        ).to_wire(),
    ]
    response_format = ResponseFormat(name="receipt", schema=receipt_json_schema())
    last_error: ValidationError | None = None
    for attempt in range(1, ATTEMPTS + 1):
        answer = await _collect_text(model, messages, response_format)
        try:
            return Receipt.model_validate_json(_strip_fences(answer))
        except ValidationError as error:
            last_error = error
            problem = _describe(error)
        _log.warning(
            "Receipt: %s's answer %d of %d failed validation: %s. The answer began: %r",
            model.name,
            attempt,
            ATTEMPTS,
            problem,
            answer[:_LOGGED_ANSWER_CHARS],
        )
        messages += [
            AssistantMessage(content=answer).to_wire(),
            UserMessage(
                content=(
                    f"That JSON is not valid for the receipt schema: {problem}. "
                    "Answer again with corrected JSON only."
                )
            ).to_wire(),
        ]
    raise ReceiptReadError(
        "I couldn't read that receipt reliably. Please send a sharper photo of the whole "
        "receipt, or type its date, items and total."
    ) from last_error


async def _collect_text(
    model: ChatModel, messages: list[dict[str, Any]], response_format: ResponseFormat
) -> str:
    """The answer's text; a restarted stream's partial text is thrown away."""
    pieces: list[str] = []
    async for event in model.stream(messages, tools=None, response_format=response_format):
        if isinstance(event, StreamRestart):
            pieces.clear()
        elif isinstance(event, TextDelta):
            pieces.append(event.text)
    return "".join(pieces)


def _strip_fences(answer: str) -> str:
    """Models without strict structured output sometimes wrap JSON in a Markdown fence."""
    text = answer.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text


def _describe(error: ValidationError) -> str:
    """A short, model-readable summary of what failed validation."""
    return describe_errors(error.errors()[:5], whole="answer")
