"""``helpline stats``: the support desk's numbers, as a table or as JSON."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from helpline.cli_options import DatabaseOption, JsonOption

if TYPE_CHECKING:
    from helpline.store import DeskStats


def stats(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only conversations started on or after this ISO date."),
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Conversations, resolution by the assistant, handoffs, answer times, CSAT, intents,
    articles, tool errors, tokens and cost."""
    from helpline.cli import _fail, _open_store, _print_json, _settings
    from helpline.server.routes_stats import start_of

    day = None
    if since is not None:
        try:
            day = date.fromisoformat(since)
        except ValueError:
            _fail(f"--since takes an ISO date such as 2026-11-01, not {since!r}.")
    store = _open_store(_settings(database_url=database_url))
    try:
        numbers = store.stats.compute(start_of(day))
    finally:
        store.close()
    if json_output:
        _print_json(dataclasses.asdict(numbers))
    else:
        print_stats(numbers, day)


def print_stats(numbers: DeskStats, since: date | None) -> None:
    """The numbers as a table (coloured on a terminal, plain in a pipe)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    table = Table(
        title=f"Since {since.isoformat()}" if since else "All conversations",
        show_header=False,
        title_justify="left",
    )
    table.add_column(style="bold")
    table.add_column()
    for label, value in _rows(numbers):
        table.add_row(label, value)
    console.print(table)


def _rows(n: DeskStats) -> list[tuple[str, str]]:
    ratings = ", ".join(f"{score}: {count}" for score, count in n.csat_distribution.items())
    csat = (
        f"{n.csat_average:.2f} of 5 ({n.ratings} ratings; {ratings})" if n.ratings else "no ratings"
    )
    rows = [
        ("Conversations", f"{n.conversations:,}"),
        ("Resolved by the assistant", _share(n.resolved_by_assistant, n.resolution_rate)),
        ("Handed to a person", _share(n.handoffs, n.handoff_rate)),
        ("Reopened within 24 h", f"{n.reopened:,}"),
        ("Median time to first answer", _duration(n.median_seconds_to_first_answer)),
        ("Median time to an agent's reply", _duration(n.median_seconds_to_agent_reply)),
        ("CSAT", csat),
        ("Top intents", _listing(n.top_intents, "intent", "conversations")),
        ("Top articles", _listing(n.top_articles, "article", "count")),
        ("Tools called", _listing(n.top_tools, "tool", "calls")),
        ("Tool errors", f"{n.tool_errors:,} of {n.tool_calls:,} calls"),
        (
            "Tokens",
            f"{n.prompt_tokens:,} in ({n.cached_tokens:,} cached), "
            f"{n.completion_tokens:,} out ({n.reasoning_tokens:,} reasoning)",
        ),
        ("Cost", f"${n.cost_usd:,.4f}"),
    ]
    return rows


def _share(count: int, rate: float | None) -> str:
    return f"{count:,} ({rate:.0%})" if rate is not None else f"{count:,}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _listing(rows: list[dict[str, Any]], name: str, count: str) -> str:
    return ", ".join(f"{row[name]} ({row[count]})" for row in rows) or "-"
