"""The receipt model's validation and its portable structured-output schema."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from helpline.receipts import Receipt, receipt_json_schema

VALID: dict[str, Any] = {
    "date": "2018-12-25",
    "items": [{"name": "Teh ais", "quantity": 2, "price_in_cents": 500}],
    "currency": "myr",
    "total_in_cents": 500,
}


def test_valid_receipt_and_normalised_currency() -> None:
    receipt = Receipt.model_validate(VALID)
    assert receipt.currency == "MYR"
    assert Receipt.model_validate({**VALID, "date": None}).date is None


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("2018-12-25", "2018-12-25"),
        (" 2018-12-25 ", "2018-12-25"),
        ("20181225", "2018-12-25"),
        ("2023-09-27T19:44:44", "2023-09-27"),
        ("2023-09-27T19:44:44Z", "2023-09-27"),
        ("2023-09-27T23:59:59-05:00", "2023-09-27"),  # the printed date, not UTC's
        ("2023-09-27T00:10:00.5+08:00", "2023-09-27"),
        ("2023-09-27 19:44", "2023-09-27"),
    ],
)
def test_any_iso_date_or_datetime_is_kept_as_its_date(written: str, kept: str) -> None:
    assert Receipt.model_validate({**VALID, "date": written}).date == kept


@pytest.mark.parametrize(
    "change",
    [
        {"date": "25/12/2018"},
        {"date": "2023-09-27T25:00"},
        {"date": "2023-09-27 at noon"},
        {"date": "2018-02-30"},
        {"currency": "RM"},
        {"total_in_cents": -1},
        {"items": [{"name": "Tea", "quantity": 0, "price_in_cents": 100}]},
        {"items": [{"name": "", "quantity": 1, "price_in_cents": 100}]},
        {"tip": 100},
    ],
)
def test_invalid_receipts_are_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Receipt.model_validate({**VALID, **change})


def _walk(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [found for item in node for found in _walk(item)]
    if not isinstance(node, dict):
        return []
    children = [v for k, v in node.items() if k != "properties"]
    children += list(node.get("properties", {}).values())
    return [node, *(found for child in children for found in _walk(child))]


def test_schema_stays_in_the_portable_subset() -> None:
    schema = receipt_json_schema()
    nodes = _walk(schema)
    used = {key for node in nodes for key in node}
    assert used <= {
        "type", "properties", "required", "additionalProperties", "items", "anyOf",
        "description", "enum",
    }  # fmt: skip
    objects = [node for node in nodes if node.get("type") == "object"]
    assert len(objects) == 2
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    assert schema["properties"]["date"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert schema["properties"]["items"]["items"]["properties"]["quantity"]["type"] == "integer"
