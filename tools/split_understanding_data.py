"""Split the offline-understanding data into its development and test parts.

The labelled lines live in tests/data/understanding/lines.jsonl (one file to edit); this
script writes dev.jsonl and test.jsonl from it, a random quarter of each intent going to
test, and sets the "split" of every line in dialogues.jsonl and electronics.jsonl the same
way. Each intent's draw is seeded by the intent's name, so adding lines to one intent never
moves another intent's lines between the parts. It also checks every line: known intent,
a source, and order_id / email fields matching what the text contains.

Run: python tools/split_understanding_data.py  (idempotent; commit its output)
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "understanding"
SEED = 20261202
TEST_SHARE = 0.25

FOOD_INTENTS = frozenset(
    [
        "place_order",
        "cancel_order",
        "change_order",
        "track_order",
        "delivery_time",
        "delivery_options",
        "delivery_address",
        "refund_request",
        "refund_status",
        "refund_policy",
        "payment_methods",
        "payment_problem",
        "invoice",
        "create_account",
        "edit_account",
        "delete_account",
        "password_reset",
        "signup_problem",
        "contact_info",
        "human_agent",
        "complaint",
        "feedback",
        "newsletter",
        "greeting",
        "thanks",
        "goodbye",
        "problem",
        "receipt_share",
        "missing_items",
        "wrong_items",
        "cold_or_damaged",
        "late_delivery",
        "allergens",
        "promo_code",
        "courier_tip",
        "none",
    ]
)
ELECTRONICS_INTENTS = frozenset(
    [
        "returns",
        "warranty",
        "track_order",
        "cancel_order",
        "delivery_options",
        "refund_status",
        "refund_policy",
        "payment_methods",
        "payment_problem",
        "invoice",
        "password_reset",
        "create_account",
        "delete_account",
        "human_agent",
        "contact_info",
        "product_compatibility",
        "damaged_item",
        "greeting",
        "thanks",
        "goodbye",
        "problem",
        "none",
    ]
)
SOURCES = frozenset({"own", "clinc150", "banking77", "abcd", "sgd", "multiwoz"})
FOOD_ORDER_ID = re.compile(r"(?i)(DD)-?(\d{5})(?!\d)")
SHOP_ORDER_ID = re.compile(r"(?i)(VC)-?(\d{6})(?!\d)")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON lines, UTF-8 kept readable."""
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def test_indexes(groups: dict[str, list[int]]) -> set[int]:
    """A seeded random quarter (at least one) of each group's row indexes."""
    chosen: set[int] = set()
    for key, indexes in groups.items():
        shuffled = sorted(indexes)
        random.Random(f"{SEED}:{key}").shuffle(shuffled)
        chosen.update(shuffled[: max(1, round(len(shuffled) * TEST_SHARE))])
    return chosen


def check_line(row: dict[str, Any], intents: frozenset[str], order_id: re.Pattern[str]) -> str:
    """What is wrong with one labelled line, or an empty string."""
    if row.get("intent") not in intents:
        return f"unknown intent {row.get('intent')!r}"
    if row.get("source") not in SOURCES:
        return f"unknown source {row.get('source')!r}"
    found = order_id.search(row["text"])
    expected_id = f"{found.group(1).upper()}-{found.group(2)}" if found else None
    if row.get("order_id") != expected_id:
        return f"order_id should be {expected_id!r}"
    email = EMAIL.search(row["text"])
    if row.get("email") != (email.group(0) if email else None):
        return "email field does not match the text"
    return ""


def check_all(
    rows: Sequence[dict[str, Any]], intents: frozenset[str], order_id: re.Pattern[str], name: str
) -> list[str]:
    """Problems found in a file's lines, duplicates included, each with its line number."""
    problems = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if problem := check_line(row, intents, order_id):
            problems.append(f"{name}:{number}: {problem}: {row['text']!r}")
        key = row["text"].casefold().strip()
        if key in seen:
            problems.append(f"{name}:{number}: duplicate of line {seen[key]}: {row['text']!r}")
        seen.setdefault(key, number)
    return problems


def by_key(rows: Sequence[dict[str, Any]], key: str) -> dict[str, list[int]]:
    """Row indexes grouped by one field's value."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        groups[str(row[key])].append(index)
    return groups


def with_split(rows: Sequence[dict[str, Any]], test: set[int]) -> list[dict[str, Any]]:
    """The rows with their "split" field set from the chosen test indexes."""
    return [{**row, "split": "test" if i in test else "dev"} for i, row in enumerate(rows)]


def problems() -> list[str]:
    """Everything wrong in the hand-edited files, each with its file and line number."""
    found = check_all(read_jsonl(DATA / "lines.jsonl"), FOOD_INTENTS, FOOD_ORDER_ID, "lines.jsonl")
    shop = read_jsonl(DATA / "electronics.jsonl")
    return found + check_all(shop, ELECTRONICS_INTENTS, SHOP_ORDER_ID, "electronics.jsonl")


def planned() -> dict[str, list[dict[str, Any]]]:
    """What each split file should hold, by file name."""
    lines = read_jsonl(DATA / "lines.jsonl")
    shop = read_jsonl(DATA / "electronics.jsonl")
    dialogues = read_jsonl(DATA / "dialogues.jsonl")
    test = test_indexes(by_key(lines, "intent"))
    return {
        "dev.jsonl": [row for i, row in enumerate(lines) if i not in test],
        "test.jsonl": [row for i, row in enumerate(lines) if i in test],
        "electronics.jsonl": with_split(shop, test_indexes(by_key(shop, "intent"))),
        "dialogues.jsonl": with_split(dialogues, test_indexes(by_key(dialogues, "source"))),
    }


def main() -> int:
    """Check the data, write dev.jsonl and test.jsonl, and set the other files' splits."""
    if found := problems():
        print("\n".join(found), file=sys.stderr)
        return 1
    for name, rows in planned().items():
        write_jsonl(DATA / name, rows)
        print(f"{name}: {len(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
