"""Orders and refunds: the repository, the refund rules and the tools, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from helpline.messages import ToolCall
from helpline.store import AlreadyRefunded, Order, OrderItem, Refund, Store
from helpline.support.demo import seed_demo_orders
from helpline.support.orders import OrderSystem, normalize_order_id, order_tools
from helpline.support.profile import load_profile
from helpline.tools import ToolContext, Toolset
from tests.profiles import paid_at_once

NOW = datetime.now(UTC)


def _order(order_id: str = "DD-1", delivered_days_ago: float | None = 1, **changes: Any) -> Order:
    delivered = NOW - timedelta(days=delivered_days_ago) if delivered_days_ago is not None else None
    order = Order(
        id=order_id,
        customer_name="Omar Haddad",
        customer_email="omar@example.com",
        placed_at=(delivered or NOW) - timedelta(minutes=40),
        delivered_at=delivered,
        status="delivered" if delivered else "on_the_way",
        currency="EUR",
        total_cents=2399,
        restaurant="Napoli Express",
        items=(
            OrderItem("Margherita Pizza", 1, 1150),
            OrderItem("Garlic Bread", 1, 450),
            OrderItem("Coca-Cola 330ml", 2, 250),
        ),
    )
    return replace(order, **changes)


class Desk:
    """The order tools as the assistant calls them: JSON arguments, validated, on one conversation."""

    def __init__(self, store: Store, system: OrderSystem | None = None) -> None:
        self.store = store
        self.toolset = Toolset(order_tools(paid_at_once(), system))
        self.conversation_id = store.conversations.create()
        self.calls = 0

    async def call(self, name: str, call_id: str | None = None, **arguments: Any) -> Any:
        self.calls += 1
        call_id = call_id or f"call_{self.calls}"
        context = ToolContext(
            conversation_id=self.conversation_id, tool_call_id=call_id, store=self.store
        )
        text = await self.toolset.call(ToolCall.make(call_id, name, json.dumps(arguments)), context)
        return text if text.startswith("Error:") else json.loads(text)

    async def refund(
        self,
        order_id: str,
        items: list[str],
        call_id: str | None = None,
        email: str = "omar@example.com",
    ) -> Any:
        return await self.call(
            "request_refund",
            call_id,
            order_id=order_id,
            email=email,
            items=items,
            reason="arrived cold",
        )


def test_repository_round_trip_and_customer_lookup(store: Store) -> None:
    assert store.orders.add(_order("DD-1", delivered_days_ago=3))
    assert not store.orders.add(_order("DD-1", total_cents=1))
    store.orders.add(_order("DD-2", customer_name="Ada Lovelace", customer_email="Ada@Example.com"))
    stored = store.orders.get("DD-1")
    assert stored == _order("DD-1", delivered_days_ago=3)
    assert stored is not None and stored.delivered_at is not None
    assert stored.delivered_at.tzinfo is not None
    assert [o.id for o in store.orders.recent_for_customer("OMAR@example.com")] == ["DD-1"]
    assert [o.id for o in store.orders.recent_for_customer("ada@example.com")] == ["DD-2"]
    assert store.orders.recent_for_customer("Omar Haddad") == []  # a name is no credential
    assert store.orders.get("DD-404") is None


def test_repository_refunds_each_item_once(store: Store) -> None:
    store.orders.add(_order())
    store.orders.record_refunds("DD-1", [Refund("Garlic Bread", 1, 450, "missing")])
    with pytest.raises(AlreadyRefunded, match="Garlic Bread"):
        store.orders.record_refunds(
            "DD-1",
            [Refund("Margherita Pizza", 1, 1150, "cold"), Refund("Garlic Bread", 1, 450, "x")],
        )
    order = store.orders.get("DD-1")
    assert order is not None
    assert [r.item_name for r in order.refunds] == ["Garlic Bread"]  # all or none
    assert order.refunded_cents == 450


async def test_refund_approved_files_one_refund_ticket(store: Store) -> None:
    store.orders.add(_order())
    desk = Desk(store)
    result = await desk.refund("dd-1", ["margherita pizza", "Coca-Cola"])
    assert result["approved"] is True
    assert result["amount_cents"] == 1150 + 500
    assert [i["name"] for i in result["items"]] == ["Margherita Pizza", "Coca-Cola 330ml"]
    ticket = store.tickets.get(result["ticket_id"])
    assert ticket is not None
    assert (ticket.category, ticket.amount_cents, ticket.name) == ("refund", 1650, "Omar Haddad")
    assert ticket.conversation_id == desk.conversation_id
    assert "€16.50" in result["message"]
    order = store.orders.get("DD-1")
    assert order is not None
    assert {r.item_name: r.ticket_id for r in order.refunds} == {
        "Margherita Pizza": ticket.id,
        "Coca-Cola 330ml": ticket.id,
    }


async def test_retried_call_returns_the_same_refund_without_a_second_ticket(store: Store) -> None:
    store.orders.add(_order())
    desk = Desk(store)
    first = await desk.refund("DD-1", ["Garlic Bread"], call_id="call_same")
    again = await desk.refund("DD-1", ["Garlic Bread"], call_id="call_same")
    assert first == again
    assert len(store.tickets.find()) == 1


async def test_refund_refused_outside_the_window(store: Store) -> None:
    window = load_profile().settings.refund_window_days
    store.orders.add(_order("DD-OLD", delivered_days_ago=window + 1))
    store.orders.add(_order("DD-EDGE", delivered_days_ago=window - 0.01))
    desk = Desk(store)
    refused = await desk.refund("DD-OLD", ["Garlic Bread"])
    assert (refused["approved"], refused["rule"]) == (False, "refund_window")
    assert f"{window} days after delivery" in refused["message"]
    assert "person" in refused["next_step"]
    assert (await desk.refund("DD-EDGE", ["Garlic Bread"]))["approved"] is True
    assert [t.amount_cents for t in store.tickets.find()] == [450]


async def test_refund_refused_before_delivery(store: Store) -> None:
    store.orders.add(_order(delivered_days_ago=None))
    result = await Desk(store).refund("DD-1", ["Garlic Bread"])
    assert (result["approved"], result["rule"]) == (False, "not_delivered")
    assert store.tickets.find() == []


async def test_refund_never_exceeds_what_was_paid(store: Store) -> None:
    # A promo code: the items cost 23.00 but the customer paid 15.00.
    store.orders.add(_order(total_cents=1500))
    desk = Desk(store)
    first = await desk.refund("DD-1", ["Margherita Pizza"])
    assert first["amount_cents"] == 1150
    capped = await desk.refund("DD-1", ["Garlic Bread", "Coca-Cola 330ml"])
    assert capped["approved"] is True
    assert capped["amount_cents"] == 350
    assert [i["amount_cents"] for i in capped["items"]] == [350, 0]
    assert "never exceed what was paid" in capped["message"]
    order = store.orders.get("DD-1")
    assert order is not None and order.refunded_cents == 1500


async def test_refund_refused_once_everything_paid_is_refunded(store: Store) -> None:
    store.orders.add(_order(total_cents=1150))
    desk = Desk(store)
    await desk.refund("DD-1", ["Margherita Pizza"])
    refused = await desk.refund("DD-1", ["Garlic Bread"])
    assert (refused["approved"], refused["rule"]) == (False, "amount_cap")
    assert len(store.tickets.find()) == 1


async def test_refund_refused_for_an_item_already_refunded(store: Store) -> None:
    store.orders.add(_order())
    desk = Desk(store)
    first = await desk.refund("DD-1", ["Garlic Bread"])
    refused = await desk.refund("DD-1", ["Margherita Pizza", "garlic bread"])
    assert (refused["approved"], refused["rule"]) == (False, "already_refunded")
    assert f"ticket #{first['ticket_id']}" in refused["message"]
    order = store.orders.get("DD-1")
    assert order is not None and [r.item_name for r in order.refunds] == ["Garlic Bread"]
    assert len(store.tickets.find()) == 1


async def test_refund_refused_for_an_unknown_order(store: Store) -> None:
    result = await Desk(store).refund("DD-404", ["Pizza"])
    assert (result["approved"], result["rule"]) == (False, "unknown_order")
    assert "DD-404" in result["message"]
    assert "list_recent_orders" in result["next_step"]
    assert store.tickets.find() == []


async def test_another_customers_order_is_neither_shown_nor_refunded(store: Store) -> None:
    store.orders.add(_order())
    desk = Desk(store)
    refused = await desk.refund("DD-1", ["Garlic Bread"], email="mallory@example.com")
    unknown = await desk.refund("DD-404", ["Garlic Bread"], email="mallory@example.com")
    assert (refused["approved"], refused["rule"]) == (False, "unknown_order")
    # the same answer as for an order that does not exist: nothing to learn from it
    assert refused["message"].replace("DD-1 ", "DD-404 ") == unknown["message"]
    looked = await desk.call("lookup_order", order_id="DD-1", email="mallory@example.com")
    assert looked.startswith("Error: There is no order DD-1 for mallory@example.com.")
    assert "Omar" not in looked and "Napoli" not in looked
    by_name = await desk.call("list_recent_orders", email="Omar Haddad")
    assert by_name.startswith("Error: 'Omar Haddad' is not an email address.")
    assert store.tickets.find() == [] and store.orders.get("DD-1") == _order()


async def test_refund_refused_for_an_item_not_on_the_order(store: Store) -> None:
    store.orders.add(_order())
    result = await Desk(store).refund("DD-1", ["Sushi"])
    assert (result["approved"], result["rule"]) == (False, "unknown_item")
    assert "Margherita Pizza, Garlic Bread, Coca-Cola 330ml" in result["message"]
    assert store.tickets.find() == []


async def test_refund_arguments_are_validated(store: Store) -> None:
    desk = Desk(store)
    empty = await desk.call(
        "request_refund", order_id="DD-1", email="omar@example.com", items=[], reason="cold"
    )
    assert empty.startswith("Error: invalid arguments for request_refund: items")
    missing = await desk.call(
        "request_refund", order_id="DD-1", email="omar@example.com", items=["Pizza"]
    )
    assert missing.startswith("Error: invalid arguments") and "reason" in missing
    no_email = await desk.call("request_refund", order_id="DD-1", items=["Pizza"], reason="cold")
    assert no_email.startswith("Error: Orders are shown only to someone who gives the email")


async def test_lookup_and_recent_orders(store: Store) -> None:
    seed_demo_orders(store)
    desk = Desk(store)
    found = await desk.call("lookup_order", order_id=" #dd-10231 ", email=" Omar@Example.com ")
    assert found["order_id"] == "DD-10231"
    assert found["items"][0] == {
        "name": "Margherita Pizza",
        "quantity": 1,
        "unit_price_cents": 1150,
    }
    assert found["refundable_until"] is not None
    assert "customer_email" not in found
    missing = await desk.call("lookup_order", order_id="DD-404", email="omar@example.com")
    assert missing.startswith("Error: There is no order DD-404 for omar@example.com.")
    recent = await desk.call("list_recent_orders", email="omar@example.com")
    assert [o["order_id"] for o in recent["orders"]] == [
        "DD-10235",
        "DD-10231",
        "DD-10228",
        "DD-10190",
    ]
    nobody = await desk.call("list_recent_orders", email="nobody@example.com")
    assert nobody["orders"] == [] and "email address" in nobody["message"]


def test_demo_seed_is_idempotent(store: Store) -> None:
    added = seed_demo_orders(store)
    assert len(added) == 8
    assert seed_demo_orders(store) == []
    old = store.orders.get("DD-10190")
    assert old is not None and old.delivered_at is not None
    assert NOW - old.delivered_at > timedelta(days=load_profile().settings.refund_window_days)


def test_order_ids_are_read_as_customers_type_them() -> None:
    assert normalize_order_id("  #dd-10234 ") == "DD-10234"


class ShopOrders:
    """An integrator's own order system: orders kept in a dict (the module docstring's example)."""

    def __init__(self, *orders: Order) -> None:
        self.orders = {o.id: o for o in orders}

    def get(self, order_id: str) -> Order | None:
        return self.orders.get(order_id)

    def recent_for_customer(self, email: str, limit: int = 5) -> list[Order]:
        wanted = email.casefold()
        return [o for o in self.orders.values() if o.customer_email.casefold() == wanted][:limit]

    def record_refunds(self, order_id: str, refunds: Sequence[Refund]) -> list[Refund]:
        order = self.orders[order_id]
        if {r.item_name for r in order.refunds} & {r.item_name for r in refunds}:
            raise AlreadyRefunded(order_id)
        self.orders[order_id] = replace(order, refunds=order.refunds + tuple(refunds))
        return list(refunds)


async def test_tools_work_with_an_integrators_order_system(sqlite_store: Store) -> None:
    shop = ShopOrders(_order("SH-1"))
    desk = Desk(sqlite_store, shop)
    found = await desk.call("lookup_order", order_id="SH-1", email="omar@example.com")
    assert found["restaurant"] == "Napoli Express"
    approved = await desk.refund("SH-1", ["Garlic Bread"])
    assert approved["approved"] is True
    assert [r.ticket_id for r in shop.orders["SH-1"].refunds] == [approved["ticket_id"]]
    assert (await desk.refund("SH-1", ["Garlic Bread"]))["rule"] == "already_refunded"
    assert sqlite_store.orders.get("SH-1") is None  # nothing went to Helpline's own tables
