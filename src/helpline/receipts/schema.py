"""The receipt data model, its structured-output JSON schema, and the read error.

``Receipt`` is the public contract of ``analyze_receipt_image``: whatever reads the
photo (offline OCR or a vision model) must produce one that validates.
"""

from __future__ import annotations

import copy
import functools
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_CURRENCY = re.compile(r"[A-Z]{3}")


class ReceiptReadError(Exception):
    """A receipt could not be read; the message is safe to show a customer."""


class ReceiptItem(BaseModel):
    """One purchased line."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The item's name as printed on the receipt.")
    quantity: int = Field(
        ge=1, description="How many units were bought; 1 when the receipt shows no quantity."
    )
    price_in_cents: int = Field(
        ge=0,
        description=(
            "The line total in the currency's minor unit (cents): what this line adds to the "
            "bill, i.e. quantity times unit price, so 2 x 1.50 is 300. Never the unit price "
            "alone, never negative (discount lines are not items)."
        ),
    )


class Receipt(BaseModel):
    """A receipt read from a photo."""

    model_config = ConfigDict(extra="forbid")

    date: str | None = Field(
        description=(
            "The purchase date as an ISO 8601 calendar date, YYYY-MM-DD (25/12/2018 becomes "
            "2018-12-25); null only when no date can be read."
        ),
    )
    items: list[ReceiptItem] = Field(
        description="The purchased lines in printed order; empty when none can be read."
    )
    currency: str = Field(
        description="ISO 4217 code in three capital letters, e.g. MYR for RM, USD, SGD, EUR."
    )
    total_in_cents: int = Field(
        ge=0,
        description=(
            "The amount payable in cents, after tax and rounding: not the subtotal, not the "
            "cash tendered, not the change."
        ),
    )

    @field_validator("date")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        """Any ISO 8601 date or date and time (``2023-09-27T19:44:44+08:00``), kept as
        ``YYYY-MM-DD``: the calendar date as printed, whatever the time or offset."""
        if value is None:
            return None
        try:
            return datetime.fromisoformat(value.strip()).date().isoformat()
        except ValueError:
            raise ValueError(
                f"date must be a real ISO 8601 date, YYYY-MM-DD, or null, got {value!r}"
            ) from None

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        value = value.strip().upper()
        if not _CURRENCY.fullmatch(value):
            raise ValueError(f"currency must be a three-letter ISO 4217 code, got {value!r}")
        return value


# Keywords outside the portable structured-output subset (xAI, OpenAI strict mode):
# validation constraints are enforced by Pydantic after the fact instead.
_DROPPED_KEYWORDS = frozenset(
    {
        "title",
        "default",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
    }
)


@functools.cache
def receipt_json_schema() -> dict[str, Any]:
    """The JSON schema for structured output: ``$ref`` inlined, every property required.

    It keeps to the subset xAI and OpenAI's strict mode both accept (object, array,
    string, integer, null, anyOf, description); bounds and formats are dropped from the
    schema and enforced when the answer is validated with ``Receipt``. Built once; don't
    mutate it.
    """
    raw = Receipt.model_json_schema()
    definitions = raw.pop("$defs", {})
    return _portable(raw, definitions)


def _portable(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_portable(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(definitions[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _portable(merged, definitions)
    out = {
        key: _portable(value, definitions)
        for key, value in node.items()
        if key not in _DROPPED_KEYWORDS and key != "properties"
    }
    if "properties" in node:
        # Property names are data, not keywords: a field called "title" must survive.
        out["properties"] = {
            name: _portable(prop, definitions) for name, prop in node["properties"].items()
        }
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out
