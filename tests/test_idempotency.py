"""Tool-call ids are unique only within a conversation: providers number calls per reply."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from helpline.messages import ToolCall
from helpline.store import Order, OrderItem, Store
from helpline.store.tables import utcnow
from helpline.support import support_tools
from helpline.tools import ToolContext, Toolset
from tests.profiles import paid_at_once

SAME_ID = "call_0"


async def _call(store: Store, conversation_id: str, tool: str, **arguments: Any) -> str:
    toolset = Toolset(support_tools(paid_at_once()))
    context = ToolContext(conversation_id=conversation_id, tool_call_id=SAME_ID, store=store)
    return await toolset.call(ToolCall.make(SAME_ID, tool, json.dumps(arguments)), context)


async def test_another_conversations_call_id_files_its_own_ticket(store: Store) -> None:
    alice, bob = store.conversations.create(), store.conversations.create()
    first = await _call(store, alice, "create_customer_ticket", name="Alice", issue="no login")
    other = await _call(store, bob, "create_customer_ticket", name="Bob", issue="double charge")
    assert "Alice" not in other and "no login" not in other
    assert other.startswith("Ticket #2 created for Bob")
    again = await _call(store, alice, "create_customer_ticket", name="Alice", issue="no login")
    assert again == first  # a retried call in the same conversation still files once
    assert [t.name for t in store.tickets.find(conversation_id=bob)] == ["Bob"]
    assert len(store.tickets.find()) == 2


async def test_handoffs_and_refunds_with_a_reused_call_id_are_their_own(store: Store) -> None:
    delivered = utcnow() - timedelta(hours=1)
    for order_id, email in (("DD-A", "alice@example.com"), ("DD-B", "bob@example.com")):
        store.orders.add(
            Order(
                id=order_id,
                customer_name=email.split("@")[0].title(),
                customer_email=email,
                placed_at=delivered - timedelta(minutes=30),
                delivered_at=delivered,
                status="delivered",
                currency="EUR",
                total_cents=1000,
                restaurant="Napoli Express",
                items=(OrderItem("Pizza", 1, 1000),),
            )
        )
    alice, bob = store.conversations.create(), store.conversations.create()
    refund = {"items": ["Pizza"], "reason": "cold"}
    paid_alice = json.loads(
        await _call(
            store, alice, "request_refund", order_id="DD-A", email="alice@example.com", **refund
        )
    )
    paid_bob = json.loads(
        await _call(
            store, bob, "request_refund", order_id="DD-B", email="bob@example.com", **refund
        )
    )
    assert paid_alice["approved"] and paid_bob["approved"]
    assert paid_bob["ticket_id"] != paid_alice["ticket_id"]
    order_b = store.orders.get("DD-B")
    assert order_b is not None and order_b.refunded_cents == 1000
    carol = store.conversations.create()
    handed = json.loads(await _call(store, carol, "escalate_to_human", reason="wants a person"))
    assert handed["ticket_id"] not in (paid_alice["ticket_id"], paid_bob["ticket_id"])
    [ticket] = store.tickets.find(conversation_id=carol)
    assert (ticket.category, ticket.issue) == ("handoff", "wants a person")
