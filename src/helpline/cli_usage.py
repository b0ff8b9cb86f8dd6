"""``helpline usage``: model tokens and cost by day and by model; the cost line of a chat turn."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from helpline.cli_options import DatabaseOption, JsonOption

if TYPE_CHECKING:
    from helpline.events import TurnDone
    from helpline.store import DailyUsage, UsageTotals


def usage(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only from this day on (UTC), e.g. 2026-12-01."),
    ] = None,
    database_url: DatabaseOption = None,
    json_output: JsonOption = False,
) -> None:
    """Model tokens (prompt, cached, completion, reasoning) and cost in US dollars, by day and
    by model."""
    from helpline.cli import _fail, _open_store, _print_json, _settings

    try:
        start = datetime.combine(date.fromisoformat(since), time(), UTC) if since else None
    except ValueError:
        _fail(f"--since takes a day written as YYYY-MM-DD, such as 2026-12-01; not {since!r}.")
    store = _open_store(_settings(database_url=database_url))
    days = store.usage.by_day_and_model(start)
    total = _total(days)
    if json_output:
        _print_json(
            {
                "since": start.date().isoformat() if start else None,
                "days": [{**asdict(d), "day": d.day.isoformat()} for d in days],
                "total": total,
            }
        )
        return
    _print_table(days, total, start)


def turn_cost_line(done: TurnDone) -> str:
    """One line on what a turn read, wrote and cost: ``1,234 tokens in (1,000 cached) · 56 out
    · $0.0021``."""
    from helpline.pricing import format_cost

    usage = done.usage
    cached = f" ({usage.cached_prompt_tokens:,} cached)" if usage.cached_prompt_tokens else ""
    reasoning = f", {usage.reasoning_tokens:,} reasoning" if usage.reasoning_tokens else ""
    return (
        f"{usage.prompt_tokens:,} tokens in{cached} · {usage.completion_tokens:,} out"
        f"{reasoning} · {format_cost(done.cost_usd)}"
    )


def _total(days: list[DailyUsage]) -> dict[str, Any]:
    priced = [d.cost_usd for d in days if d.cost_usd is not None]
    return {
        "replies": sum(d.replies for d in days),
        "prompt_tokens": sum(d.prompt_tokens for d in days),
        "cached_tokens": sum(d.cached_tokens for d in days),
        "completion_tokens": sum(d.completion_tokens for d in days),
        "reasoning_tokens": sum(d.reasoning_tokens for d in days),
        "cost_usd": round(sum(priced), 10) if priced else None,
        "unpriced_replies": sum(d.unpriced_replies for d in days),
    }


def _print_table(days: list[DailyUsage], total: dict[str, Any], since: datetime | None) -> None:
    """A table: drawn with rich on a terminal, plain aligned columns in a pipe."""
    if not days:
        when = f" since {since.date().isoformat()}" if since else ""
        sys.stdout.write(f"No model usage recorded{when}.\n")
        return
    header = ["day", "model", "replies", "prompt", "cached", "completion", "reasoning", "cost"]
    rows = [[day.day.isoformat(), day.model, *_cells(day)] for day in days]
    last = ["total", "", *_cells_of(total)]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header)
        for row in rows:
            table.add_row(*row)
        table.add_section()
        table.add_row(*last, style="bold")
        Console(highlight=False).print(table)
    else:
        lines = [header, *rows, last]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        for line in lines:
            cells = [
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            ]
            sys.stdout.write("  ".join(cells).rstrip() + "\n")
    if total["unpriced_replies"]:
        sys.stdout.write(
            f"{total['unpriced_replies']} replies came from models without a price: add them "
            "to a TOML file named by HELPLINE_PRICES.\n"
        )


def _cells(totals: UsageTotals) -> list[str]:
    return _cells_of(asdict(totals))


def _cells_of(values: dict[str, Any]) -> list[str]:
    from helpline.pricing import format_cost

    counts = ("replies", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens")
    cost = format_cost(values["cost_usd"])
    if values["cost_usd"] is not None and values["unpriced_replies"]:
        cost += " + unknown"
    return [f"{values[key]:,}" for key in counts] + [cost]
