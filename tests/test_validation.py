"""Validation errors read as one line that says where and what."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from helpline.support.profile import ProfileError, load_profile
from helpline.validation import describe_errors


class Item(BaseModel):
    name: str
    price_in_cents: int


class Order(BaseModel):
    items: list[Item]


def test_each_problem_is_named_by_its_place() -> None:
    with pytest.raises(ValidationError) as caught:
        Order.model_validate({"items": [{"name": "soda", "price_in_cents": "a lot"}, {}]})
    assert describe_errors(caught.value.errors()) == (
        "items.0.price_in_cents: Input should be a valid integer, unable to parse string as an "
        "integer; items.1.name: Field required; items.1.price_in_cents: Field required"
    )


def test_the_whole_value_and_skipped_places() -> None:
    errors = [
        {"loc": (), "msg": "Input should be an object"},
        {"loc": ("body", "text"), "msg": "x"},
    ]
    assert describe_errors(errors, whole="body", skip=("body",)) == (
        "body: Input should be an object; text: x"
    )


def test_a_profile_with_a_bad_setting_says_which(tmp_path: Path) -> None:
    default = load_profile()
    (tmp_path / "prompt.md").write_text("You help.")
    (tmp_path / "profile.toml").write_text(
        (default.path / "profile.toml")
        .read_text()
        .replace("refund_window_days = 14", 'refund_window_days = "two weeks"')
    )
    with pytest.raises(
        ProfileError,
        match=r"invalid settings: policy\.refund_window_days: Input should be a valid integer",
    ):
        load_profile(tmp_path)
