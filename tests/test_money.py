"""Amounts as customers read them, for every currency the tools quote."""

from __future__ import annotations

import pytest

from helpline.money import format_money


@pytest.mark.parametrize(
    ("cents", "currency", "shown"),
    [
        (1650, "EUR", "€16.50"),
        (2347, "usd", "$23.47"),
        (8090, "MYR", "80.90 MYR"),
        (1250, "JPY", "¥1,250"),  # yen have no cents
        (-305, "GBP", "£-3.05"),
        (123456789, "CHF", "1,234,567.89 CHF"),
    ],
)
def test_amounts(cents: int, currency: str, shown: str) -> None:
    assert format_money(cents, currency) == shown
