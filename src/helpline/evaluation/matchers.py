"""Matching expected values from a suite against what happened.

A plain value must be equal (text compared without regard to case). A mapping whose keys
are all operators tests the value: ``contains`` (a substring, or a list element), ``matches``
(a regular expression), ``one_of``, ``gte``, ``lte``, ``absent: true``, ``not``. Any other
mapping matches an object key by key; a list needs a matching element for each of its items.
"""

from __future__ import annotations

import re
from typing import Any

OPERATORS = frozenset({"contains", "matches", "one_of", "gte", "lte", "absent", "not"})


def mismatch(expected: Any, actual: Any) -> str | None:
    """Why ``actual`` does not match ``expected``, or ``None`` when it does."""
    if isinstance(expected, dict) and expected and set(expected) <= OPERATORS:
        for operator, operand in expected.items():
            problem = _operator(operator, operand, actual)
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"expected an object, got {_show(actual)}"
        for key, wanted in expected.items():
            if wanted == {"absent": True} and actual.get(key) is None:
                continue
            if key not in actual:
                return f"{key}: missing"
            problem = mismatch(wanted, actual[key])
            if problem:
                return f"{key}: {problem}"
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"expected a list, got {_show(actual)}"
        for wanted in expected:
            if not any(mismatch(wanted, item) is None for item in actual):
                return f"no element matches {_show(wanted)} in {_show(actual)}"
        return None
    if _equal(expected, actual):
        return None
    return f"expected {_show(expected)}, got {_show(actual)}"


def _operator(operator: str, operand: Any, actual: Any) -> str | None:
    if operator == "absent":
        present = actual is not None
        return f"expected nothing, got {_show(actual)}" if present == bool(operand) else None
    if operator == "not":
        return (
            f"expected anything but {_show(operand)}" if mismatch(operand, actual) is None else None
        )
    if operator == "one_of":
        if any(mismatch(option, actual) is None for option in operand):
            return None
        return f"expected one of {_show(operand)}, got {_show(actual)}"
    if operator in ("gte", "lte"):
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return f"expected a number, got {_show(actual)}"
        ok = actual >= operand if operator == "gte" else actual <= operand
        sign = ">=" if operator == "gte" else "<="
        return None if ok else f"expected {sign} {operand}, got {actual}"
    if operator == "matches":
        text = actual if isinstance(actual, str) else str(actual)
        matched = re.search(str(operand), text, re.IGNORECASE)
        return None if matched else f"{_show(actual)} does not match /{operand}/"
    # contains
    if isinstance(actual, str):
        found = str(operand).casefold() in actual.casefold()
        return None if found else f"{_show(actual)} does not contain {_show(operand)}"
    if isinstance(actual, list):
        for item in actual:
            if mismatch(operand, item) is None or (
                isinstance(item, str) and mismatch({"contains": operand}, item) is None
            ):
                return None
        return f"{_show(actual)} has no element like {_show(operand)}"
    return f"expected text or a list containing {_show(operand)}, got {_show(actual)}"


def _equal(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.strip().casefold() == actual.strip().casefold()
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


def _show(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
