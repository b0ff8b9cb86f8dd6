"""The offline-understanding data is well formed and its split files are up to date."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from tools.split_understanding_data import DATA, FOOD_INTENTS, planned, problems

from helpline.support.profile import DEFAULT_PROFILE
from helpline.understanding.intents import read_intents


def rows(name: str) -> list[dict[str, Any]]:
    """One data file's rows."""
    text = (DATA / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_line_has_a_known_intent_a_source_and_matching_ids() -> None:
    assert problems() == []


def test_split_files_are_what_the_split_script_writes() -> None:
    for name, expected in planned().items():
        assert rows(name) == expected, f"run python tools/split_understanding_data.py ({name})"


def test_each_intent_has_enough_lines_on_both_sides() -> None:
    dev, test = (
        Counter(r["intent"] for r in rows("dev.jsonl")),
        Counter(r["intent"] for r in rows("test.jsonl")),
    )
    assert set(dev) == set(test) == FOOD_INTENTS
    assert sum(dev.values()) >= 480 and sum(test.values()) >= 150
    assert min((dev + test).values()) >= 15


def test_dev_and_test_share_no_line() -> None:
    dev = {r["text"].casefold() for r in rows("dev.jsonl")}
    assert not dev & {r["text"].casefold() for r in rows("test.jsonl")}


def test_each_dialogue_names_the_customer_in_its_name_turn_only() -> None:
    dialogues = rows("dialogues.jsonl")
    assert len(dialogues) >= 60
    for dialogue in dialogues:
        turns, name = dialogue["turns"], dialogue["name"].casefold()
        assert name in turns[dialogue["name_turn"]].casefold(), dialogue
        assert not any(name in turn.casefold() for turn in turns[: dialogue["name_turn"]]), dialogue


def normalised(text: str) -> str:
    """A line as compared for sameness: lower case, words only, apostrophes dropped."""
    return " ".join(re.findall(r"[a-z0-9]+", text.casefold().replace("'", "").replace("’", "")))


def test_no_untouched_or_outside_line_is_a_profile_example() -> None:
    """The test split and the outside lines stay unseen: none of them teaches either profile's
    classifier, even written with other case or punctuation."""
    outside = rows("outside.jsonl")
    for folder, unseen in (
        (DEFAULT_PROFILE, rows("test.jsonl") + outside),
        (
            DEFAULT_PROFILE.parent / "electronics",
            [r for r in rows("electronics.jsonl") if r["split"] == "test"] + outside,
        ),
    ):
        specs, _ = read_intents(folder / "intents.toml")
        examples = {normalised(e) for spec in specs for e in spec.examples}
        shared = examples & {normalised(r["text"]) for r in unseen}
        assert not shared, (folder.name, sorted(shared)[:5])


def test_the_outside_lines_are_not_development_lines() -> None:
    """The outside lines share no line with the labelled development data."""
    labelled = {normalised(r["text"]) for r in rows("lines.jsonl") + rows("electronics.jsonl")}
    assert len(rows("outside.jsonl")) >= 300
    assert not labelled & {normalised(r["text"]) for r in rows("outside.jsonl")}
