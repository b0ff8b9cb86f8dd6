"""Persistence on SQLite and PostgreSQL: migrations, ordering, leases, tickets, images."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from helpline.store import AGENT, WAITING_FOR_AGENT, ConversationGone, Store, normalize_url
from helpline.store.db import _MIGRATIONS


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_urls_are_accepted_as_people_write_them(written: str, used: str) -> None:
    assert normalize_url(written) == used


def test_migrations_create_every_table_and_are_idempotent(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "conversations",
        "messages",
        "tickets",
        "images",
        "receipts",
        "alembic_version",
    } <= tables
    conversation_id = store.conversations.create(messages=[{"role": "user", "content": "kept"}])
    again = Store.open(store.engine.url.render_as_string(hide_password=False))  # a second start
    with again.engine.connect() as connection:
        version = connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert again.conversations.messages(conversation_id) == [{"role": "user", "content": "kept"}]
    again.close()


def test_a_new_sqlite_file_is_created_with_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "helpline.db"
    Store.open(f"sqlite:///{path}").close()
    assert path.is_file()


def test_messages_keep_their_order_and_exact_form(store: Store) -> None:
    conversation_id = store.conversations.create()
    wires = [
        {"role": "user", "content": [{"type": "text", "text": "é 😀"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]  # fmt: skip
    for wire in wires:
        store.conversations.append(conversation_id, [wire], prompt_tokens=3, completion_tokens=2)
    assert store.conversations.messages(conversation_id) == wires
    info = store.conversations.get(conversation_id)
    assert info is not None
    assert (info.prompt_tokens, info.completion_tokens) == (9, 6)
    assert store.conversations.latest_id() == conversation_id


def test_turn_lease_is_exclusive_until_released_or_expired(store: Store) -> None:
    conversation_id = store.conversations.create()
    minute = timedelta(minutes=1)
    hello = {"role": "user", "content": "hello"}
    first = store.conversations.begin_turn(conversation_id, "worker-a", minute, hello)
    assert first is not None and (first.history, first.status) == ([hello], "active")
    busy = store.conversations.begin_turn(
        conversation_id, "worker-b", minute, {"role": "user", "content": "b"}
    )
    assert busy is None
    assert store.conversations.messages(conversation_id) == [hello]  # nothing stored while busy
    store.conversations.release_turn(conversation_id, "worker-b")  # not the holder: no effect
    assert store.conversations.begin_turn(conversation_id, "worker-b", minute, hello) is None
    answer = {"role": "assistant", "content": "hi"}
    store.conversations.end_turn(conversation_id, "worker-a", [answer], 5, 1)
    second = store.conversations.begin_turn(
        conversation_id, "worker-b", timedelta(seconds=-1), hello
    )
    assert second is not None and second.history == [hello, answer, hello]
    # A person can't reply in the middle of a turn; the turn's lease has expired here.
    assert store.conversations.add_agent_reply(conversation_id, "Hello, Ana from support.")
    # An expired lease (a crashed worker) is taken over.
    assert store.conversations.begin_turn(conversation_id, "worker-c", minute, hello) is not None
    assert store.conversations.add_agent_reply(conversation_id, "Too early") is None


def test_an_agents_reply_is_stored_and_keeps_the_conversation_with_the_team(store: Store) -> None:
    conversation_id = store.conversations.create(messages=[{"role": "user", "content": "help"}])
    reply_id = store.conversations.add_agent_reply(conversation_id, "I'm on it.")
    assert reply_id is not None
    agent = {"role": "assistant", "name": AGENT, "content": "I'm on it."}
    assert store.conversations.messages(conversation_id)[-1] == agent
    info = store.conversations.get(conversation_id)
    assert info is not None and info.status == WAITING_FOR_AGENT
    start = store.conversations.begin_turn(
        conversation_id, "w", timedelta(minutes=1), {"role": "user", "content": "thanks"}
    )
    assert start is not None and start.status == WAITING_FOR_AGENT
    assert store.conversations.add_agent_reply("no-such-conversation", "hi") is None


def test_tickets_status_and_filters(store: Store) -> None:
    conversation_id = store.conversations.create()
    first, created = store.tickets.create("Omar", "login", conversation_id=conversation_id)
    second, _ = store.tickets.create("Ana", "refund", category="refund", amount_cents=450)
    assert created and (first.id, second.id) == (1, 2)
    read_back = store.tickets.get(first.id)
    assert read_back is not None and read_back.created_at.utcoffset() is not None  # UTC everywhere
    store.tickets.set_status(first.id, "resolved")
    assert [t.id for t in store.tickets.find(status="open")] == [2]
    assert [t.id for t in store.tickets.find(conversation_id=conversation_id)] == [1]
    assert store.tickets.set_status(99, "open") is None
    with pytest.raises(ValueError, match="unknown status 'done'"):
        store.tickets.set_status(1, "done")


def test_images_are_stored_once_and_found_by_reference(store: Store) -> None:
    conversation_id = store.conversations.create()
    record = store.images.add(b"\x89PNG...", "image/png", "upload:r.png", conversation_id)
    assert record.reference.startswith("image://")
    assert store.images.get(record.reference) == record
    assert store.images.get("image://missing") is None


def test_receipts_are_linked_to_their_conversation(store: Store) -> None:
    conversation_id = store.conversations.create()
    data = {"date": "2018-12-25", "items": [], "currency": "MYR", "total_in_cents": 8090}
    store.receipts.add(data, "image://x", conversation_id=conversation_id, tool_call_id="c1")
    assert store.receipts.for_conversation(conversation_id) == [data]


def test_migrations_match_the_tables(store: Store) -> None:
    """Every change to the ORM tables comes with its Alembic revision."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from helpline.store.tables import Base

    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_deleted_conversation_leaves_tickets_without_the_customer(store: Store) -> None:
    conversation_id = store.conversations.create(
        messages=[{"role": "user", "content": "I'm Omar, my fries were missing"}]
    )
    image = store.images.add(b"\x89PNG...", "image/png", "upload:receipt.png", conversation_id)
    store.receipts.add({"total_in_cents": 1200}, "image://x", conversation_id=conversation_id)
    ticket, _ = store.tickets.create(
        "Omar",
        "Fries missing",
        conversation_id=conversation_id,
        tool_call_id="call_0",
        category="refund",
        amount_cents=350,
    )
    other = store.conversations.create(messages=[{"role": "user", "content": "hello"}])

    assert store.conversations.delete(conversation_id)
    assert store.conversations.get(conversation_id) is None
    assert store.conversations.messages(conversation_id) == []
    assert store.images.get(image.id) is None
    assert store.receipts.for_conversation(conversation_id) == []
    kept = store.tickets.get(ticket.id)
    assert kept is not None
    assert (kept.name, kept.conversation_id) == ("Deleted customer", None)
    assert "Fries" not in kept.issue and (kept.category, kept.amount_cents) == ("refund", 350)
    assert store.conversations.messages(other) == [{"role": "user", "content": "hello"}]
    # a ticket filed outside any conversation never meets the deleted chat's anonymised one
    _, new = store.tickets.create("Lena", "Card declined", tool_call_id="call_0")
    assert new
    assert not store.conversations.delete(conversation_id)  # gone already
    with pytest.raises(ConversationGone):
        store.conversations.begin_turn(
            conversation_id, "w", timedelta(minutes=1), {"role": "user", "content": "hi"}
        )


def test_call_ids_become_unique_per_conversation_on_a_database_with_tickets(store: Store) -> None:
    from alembic import command
    from alembic.config import Config

    from helpline.store.db import _MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    conversation_id = store.conversations.create()
    store.tickets.create(
        "Omar", "charged twice", conversation_id=conversation_id, tool_call_id="c0"
    )
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")  # the key on the call id alone is back
        command.upgrade(config, "head")
    keys = inspect(store.engine).get_unique_constraints("tickets")
    assert [k["column_names"] for k in keys] == [["conversation_id", "tool_call_id"]]
    other = store.conversations.create()
    ticket, new = store.tickets.create("Ada", "late", conversation_id=other, tool_call_id="c0")
    assert new and ticket.name == "Ada"
