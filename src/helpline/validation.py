"""Pydantic validation errors as one readable line, for people and for models alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def describe_errors(
    errors: Iterable[Mapping[str, Any]], whole: str = "input", skip: Iterable[str] = ()
) -> str:
    """``items.0.price: Input should be a valid integer; name: Field required``.

    ``whole`` names an error about the value as a whole; ``skip`` drops location parts that
    only say where the value came from (FastAPI's ``body``, ``query``, ``path``).
    """
    skipped = set(skip)
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in skipped) or whole
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)
