"""How long the desk's numbers take as the desk grows: `helpline stats` and `GET /api/stats`.

Seeds N conversations (customer question, a help-centre search, the answer; every fifth handed
off with a person's reply, every third rated) straight into a fresh database, then times
``Stats.compute`` for all conversations and for the last week, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.stats_queries [--conversations 20000] [--json]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text

from helpline.store import Store
from helpline.store.ratings import StoredRating
from helpline.store.tables import Conversation, StoredMessage, Ticket

ARTICLES = ("Refund policy", "Cancelling an order", "Payment methods", "Delivery areas")


def seed(store: Store, count: int) -> None:
    start = datetime.now(UTC) - timedelta(days=60)
    conversations, messages, tickets, ratings = [], [], [], []
    for n in range(count):
        cid = f"b{n:08d}"
        at = start + timedelta(minutes=n * 60 * 24 * 60 / count)
        conversations.append(
            {"id": cid, "created_at": at, "updated_at": at, "status": "active",
             "prompt_tokens": 0, "completion_tokens": 0, "message_count": 5}
        )  # fmt: skip
        result = {"query": "q", "results": [{"article": ARTICLES[n % len(ARTICLES)]}]}
        wires = [
            {"role": "system", "content": "prompt"},
            {"role": "user", "content": "how do refunds work?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "k", "type": "function", "function": {"name": "search_help_center", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "k", "content": json.dumps(result)},
            {"role": "assistant", "content": "From the help centre: …"},
        ]  # fmt: skip
        if n % 5 == 0:
            wires.append({"role": "assistant", "name": "agent", "content": "Hi, a person here."})
            tickets.append(
                {"conversation_id": cid, "name": "Unknown customer", "issue": "a person",
                 "category": "handoff", "status": "open", "created_at": at, "updated_at": at}
            )  # fmt: skip
        for position, wire in enumerate(wires):
            messages.append(
                {"conversation_id": cid, "position": position, "role": wire["role"],
                 "wire": wire, "created_at": at + timedelta(seconds=2 * position)}
            )  # fmt: skip
        if n % 3 == 0:
            ratings.append({"conversation_id": cid, "score": 1 + n % 5, "created_at": at})
    with store.engine.begin() as connection:
        for table, rows in (
            (Conversation, conversations),
            (StoredMessage, messages),
            (Ticket, tickets),
            (StoredRating, ratings),
        ):
            for i in range(0, len(rows), 5000):
                connection.execute(insert(table), rows[i : i + 5000])


def timed(store: Store, since: datetime | None, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        store.stats.compute(since)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def measure(name: str, store: Store, count: int) -> dict[str, Any]:
    seed(store, count)
    week = datetime.now(UTC) - timedelta(days=7)
    return {
        "database": name,
        "conversations": count,
        "all_ms": round(timed(store, None), 1),
        "last_week_ms": round(timed(store, week), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(f"sqlite:///{Path(folder) / 'bench.db'}")
        rows.append(measure("SQLite", store, args.conversations))
        store.close()
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"helpline_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        store = Store.open(admin.url.set(database=name).render_as_string(hide_password=False))
        rows.append(measure("PostgreSQL", store, args.conversations))
        store.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| database | conversations | all (median ms) | last week (median ms) |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['database']} | {row['conversations']:,} | {row['all_ms']} | {row['last_week_ms']} |"
        )


if __name__ == "__main__":
    main()
