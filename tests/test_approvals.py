"""Refunds that wait for a person: queued by the refund tool, approved or rejected by a named
agent, paid once even when agents click at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from helpline.desk import Conflict, Desk, DeskError, NeedsNamedAgent, NotFound
from helpline.messages import ToolCall
from helpline.store import Order, OrderItem, Refund, Store, VerifiedCustomer
from helpline.store.agents import OPERATOR
from helpline.store.tables import StoredApproval
from helpline.support.approvals import approval_rules
from helpline.support.orders import order_tools
from helpline.support.profile import Profile, load_profile
from helpline.tools import ToolContext, Toolset

NOW = datetime.now(UTC)


def _order(order_id: str = "DD-1", **changes: Any) -> Order:
    order = Order(
        id=order_id,
        customer_name="Omar Haddad",
        customer_email="omar@example.com",
        placed_at=NOW - timedelta(hours=2),
        delivered_at=NOW - timedelta(hours=1),
        status="delivered",
        currency="EUR",
        total_cents=3399,
        restaurant="Napoli Express",
        items=(
            OrderItem("Family Pizza", 1, 2450),
            OrderItem("Garlic Bread", 1, 450),
            OrderItem("Coca-Cola 330ml", 2, 250),
        ),
    )
    return replace(order, **changes)


class Customer:
    """The refund tool as the assistant calls it, in one conversation."""

    def __init__(
        self,
        store: Store,
        profile: Profile | None = None,
        signed_in: VerifiedCustomer | None = None,
    ) -> None:
        self.store = store
        self.toolset = Toolset(order_tools(profile or load_profile()))
        self.conversation_id = store.conversations.create(
            messages=[{"role": "user", "content": "My pizza arrived cold"}], customer=signed_in
        )
        self.calls = 0

    async def refund(self, items: list[str], order_id: str = "DD-1", call_id: str = "") -> Any:
        self.calls += 1
        call_id = call_id or f"call_{self.calls}"
        arguments = {
            "order_id": order_id,
            "email": "omar@example.com",
            "items": items,
            "reason": "arrived cold",
        }
        context = ToolContext(
            conversation_id=self.conversation_id, tool_call_id=call_id, store=self.store
        )
        call = ToolCall.make(call_id, "request_refund", json.dumps(arguments))
        return json.loads(await self.toolset.call(call, context))

    def last_message(self) -> dict[str, Any]:
        return self.store.conversations.messages(self.conversation_id)[-1]


@pytest.fixture
def desk(store: Store) -> Desk:
    store.orders.add(_order())
    store.agents.add("Mei Ling")
    store.agents.add("Dan")
    return Desk(store, notice_wait=2)


def test_the_profile_decides_which_refunds_wait() -> None:
    settings = load_profile().settings
    order = _order()
    small = [replace_refund(450)]
    assert approval_rules(settings, order, small, verified=True) == []
    assert approval_rules(settings, order, [replace_refund(2001)], verified=True) == ["over_limit"]
    assert approval_rules(settings, order, small, verified=False) == ["customer_not_verified"]
    refunded = replace(order, refunds=(replace_refund(100),))
    assert approval_rules(settings, refunded, small, verified=True) == ["second_refund_on_order"]
    dollars = replace(order, currency="USD")  # a limit in euros says nothing about dollars
    assert approval_rules(settings, dollars, small, verified=True) == ["over_limit"]
    voltcart = load_profile(load_profile().path.parent / "electronics").settings
    assert approval_rules(voltcart, order, [replace_refund(4999)], verified=True) == ["over_limit"]


def replace_refund(cents: int) -> Refund:
    return Refund("Family Pizza", 1, cents, "cold")


async def test_a_refund_over_the_limit_waits_and_the_customer_is_told(desk: Desk) -> None:
    customer = Customer(desk.store)
    result = await customer.refund(["Family Pizza"])
    assert result["approved"] is False and result["awaiting_approval"] is True
    assert "awaits approval by a person" in result["message"]
    assert "over €20.00" in result["message"] and "€24.50" in result["message"]
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunds == ()  # nothing paid yet
    (pending,) = desk.store.approvals.find(status="pending")
    assert (pending.id, pending.amount_cents, pending.items) == (
        result["approval_id"],
        2450,
        ["Family Pizza"],
    )
    assert set(pending.rules) == {"over_limit", "customer_not_verified"}
    ticket = desk.store.tickets.get(result["ticket_id"])
    assert ticket is not None and ticket.status == "open" and "awaits approval" in ticket.issue
    # the same call, retried, queues nothing new and reads the same answer
    again = await customer.refund(["Family Pizza"], call_id="call_1")
    assert again["approval_id"] == result["approval_id"]
    assert len(desk.store.approvals.find()) == 1


async def test_approval_records_the_refund_and_tells_the_customer(desk: Desk) -> None:
    customer = Customer(desk.store)
    queued = await customer.refund(["Family Pizza", "Garlic Bread"])
    decision = desk.approve("Mei Ling", queued["approval_id"])
    assert decision.customer_told
    assert (decision.approval.status, decision.approval.decided_by) == ("approved", "Mei Ling")
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunded_cents == 2450 + 450
    assert {r.ticket_id for r in order.refunds} == {queued["ticket_id"]}
    told = customer.last_message()
    assert told["role"] == "assistant" and told["name"] == "agent"
    assert "approved" in told["content"] and "€29.00" in told["content"]
    conversation = desk.store.conversations.get(customer.conversation_id)
    assert conversation is not None and conversation.status == "active"  # the assistant goes on
    ticket = desk.store.tickets.get(queued["ticket_id"])
    assert ticket is not None and ticket.status == "resolved"
    (entry,) = desk.store.audit.find(conversation_id=customer.conversation_id)
    assert (entry.agent, entry.action, entry.approval_id) == (
        "Mei Ling",
        "approve",
        decision.approval.id,
    )
    # asked again, the tool reads the decision instead of queueing another
    assert (await customer.refund(["Family Pizza", "Garlic Bread"], call_id="call_1"))["approved"]
    with pytest.raises(Conflict, match="approved by Mei Ling"):
        desk.approve("Dan", queued["approval_id"])


async def test_rejection_tells_the_customer_why_and_pays_nothing(desk: Desk) -> None:
    customer = Customer(desk.store)
    queued = await customer.refund(["Family Pizza"])
    with pytest.raises(DeskError, match="Say why"):
        desk.reject("Dan", queued["approval_id"], "   ")
    decision = desk.reject("Dan", queued["approval_id"], "the restaurant confirmed it left hot")
    assert decision.approval.status == "rejected"
    assert decision.approval.decision_note == "the restaurant confirmed it left hot."
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunds == ()
    told = customer.last_message()["content"]
    assert "couldn't approve it: the restaurant confirmed it left hot." in told
    ticket = desk.store.tickets.get(queued["ticket_id"])
    assert ticket is not None and ticket.status == "closed"
    with pytest.raises(Conflict, match="rejected by Dan"):
        desk.approve("Mei Ling", queued["approval_id"])
    (entry,) = desk.store.audit.find(conversation_id=customer.conversation_id)
    assert (entry.agent, entry.action, entry.detail["reason"]) == (
        "Dan",
        "reject",
        "the restaurant confirmed it left hot.",
    )


async def test_money_decisions_need_a_named_agent(desk: Desk) -> None:
    queued = await Customer(desk.store).refund(["Family Pizza"])
    with pytest.raises(NeedsNamedAgent):
        desk.approve(OPERATOR, queued["approval_id"])
    with pytest.raises(NeedsNamedAgent):
        desk.reject(OPERATOR, queued["approval_id"], "no")
    with pytest.raises(NotFound, match="no approval #999"):
        desk.approve("Dan", 999)
    assert desk.store.approvals.get(queued["approval_id"]).status == "pending"  # type: ignore[union-attr]


async def test_an_approval_after_the_customer_left_or_deleted_the_chat(desk: Desk) -> None:
    left = Customer(desk.store)
    first = await left.refund(["Family Pizza"])
    gone = Customer(desk.store)
    second = await gone.refund(["Garlic Bread"], call_id="other")
    # the customer closed the page long ago: the note waits in their chat
    assert desk.approve("Dan", first["approval_id"]).customer_told
    assert "approved" in left.last_message()["content"]
    desk.delete_conversation("Dan", gone.conversation_id)
    forgotten = desk.store.approvals.get(second["approval_id"])
    assert forgotten is not None and "arrived cold" not in str(forgotten.refunds)
    decision = desk.approve("Dan", second["approval_id"])
    assert decision.approval.status == "approved" and not decision.customer_told
    assert decision.approval.conversation_id is None
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunded_cents == 2450 + 450


async def test_an_approval_the_order_can_no_longer_pay_is_reported(desk: Desk) -> None:
    customer = Customer(desk.store)
    one = await customer.refund(["Family Pizza"])
    two = await customer.refund(["Family Pizza"])  # asked twice: two requests in the queue
    desk.approve("Dan", one["approval_id"])
    decision = desk.approve("Mei Ling", two["approval_id"])
    assert decision.approval.status == "failed"
    assert "refunded already" in (decision.approval.decision_note or "")
    assert "could not be paid" in customer.last_message()["content"]
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunded_cents == 2450  # paid once


async def test_an_approval_pays_at_most_what_is_left_of_the_order(desk: Desk) -> None:
    customer = Customer(desk.store)
    queued = await customer.refund(["Family Pizza"])  # €24.50 of the €33.99 paid
    other_items = [Refund("Garlic Bread", 1, 450, "missing"), Refund("Coca-Cola 330ml", 2, 500, "")]
    desk.store.orders.record_refunds("DD-1", other_items)  # meanwhile: €9.50 paid back
    decision = desk.approve("Dan", queued["approval_id"])
    assert (decision.approval.status, decision.approval.amount_cents) == ("approved", 2449)
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunded_cents == order.total_cents == 3399
    ticket = desk.store.tickets.get(queued["ticket_id"])
    assert ticket is not None and ticket.amount_cents == 2449
    assert "less than the €24.50 asked for" in customer.last_message()["content"]


async def test_the_note_waits_for_the_assistants_turn_to_end(desk: Desk) -> None:
    customer = Customer(desk.store)
    queued = await customer.refund(["Family Pizza"])
    lease = timedelta(seconds=30)
    user = {"role": "user", "content": "any news?"}
    assert desk.store.conversations.begin_turn(customer.conversation_id, "turn-1", lease, user)
    done = threading.Event()

    def end_turn_soon() -> None:
        done.wait(0.3)
        desk.store.conversations.end_turn(
            customer.conversation_id, "turn-1", [{"role": "assistant", "content": "Not yet."}]
        )

    ender = threading.Thread(target=end_turn_soon)
    ender.start()
    decision = desk.approve("Dan", queued["approval_id"])
    ender.join()
    assert decision.customer_told
    messages = desk.store.conversations.messages(customer.conversation_id)
    assert messages[-2]["content"] == "Not yet."  # after the turn, not in it
    assert "approved" in messages[-1]["content"]


def _at_once(action: Callable[[str], object], agents: list[str]) -> list[str]:
    """Run ``action`` for each agent on its own thread, all released at the same moment;
    each ends ``done`` or ``conflict``."""
    barrier = threading.Barrier(len(agents))
    outcomes: list[str] = []

    def run(agent: str) -> None:
        barrier.wait()
        try:
            action(agent)
            outcomes.append("done")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=run, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("rounds", [6])
async def test_two_agents_approving_at_once_pay_once(desk: Desk, rounds: int) -> None:
    """Each round, two agents' threads approve the same refund at the same moment."""
    for round_number in range(rounds):
        order_id = f"DD-R{round_number}"
        desk.store.orders.add(_order(order_id))
        customer = Customer(desk.store)
        queued = await customer.refund(["Family Pizza"], order_id=order_id)
        outcomes = _at_once(
            lambda agent, approval_id=queued["approval_id"]: desk.approve(agent, approval_id),
            ["Dan", "Mei Ling"],
        )
        assert sorted(outcomes) == ["conflict", "done"]
        order = desk.store.orders.get(order_id)
        assert order is not None and order.refunded_cents == 2450
        notes = [
            m
            for m in desk.store.conversations.messages(customer.conversation_id)
            if m.get("name") == "agent"
        ]
        assert len(notes) == 1


async def test_approving_and_rejecting_at_once_decides_once(desk: Desk) -> None:
    customer = Customer(desk.store)
    queued = await customer.refund(["Family Pizza"])
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def act(kind: str) -> None:
        barrier.wait()
        try:
            if kind == "approve":
                desk.approve("Dan", queued["approval_id"])
            else:
                desk.reject("Mei Ling", queued["approval_id"], "not eligible")
            outcomes.append(kind)
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=act, args=(k,)) for k in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["approve", "conflict"], ["conflict", "reject"])
    approval = desk.store.approvals.get(queued["approval_id"])
    order = desk.store.orders.get("DD-1")
    assert approval is not None and order is not None
    assert order.refunded_cents == (2450 if approval.status == "approved" else 0)


async def test_an_abandoned_approval_is_finished_without_paying_twice(desk: Desk) -> None:
    customer = Customer(desk.store)
    queued = await customer.refund(["Family Pizza"])
    approval_id = queued["approval_id"]
    long_ago = datetime.now(UTC) + timedelta(minutes=5)  # Dan's claim is older than this
    claimed = desk.store.approvals.claim(approval_id, "Dan", long_ago)
    assert claimed is not None
    desk.orders.record_refunds(claimed.order_id, claimed.refunds)  # then Dan's process died
    with pytest.raises(Conflict, match="being approved by Dan"):
        desk.approve("Mei Ling", approval_id)
    with desk.store.engine.begin() as connection:  # two hours pass
        connection.execute(
            update(StoredApproval)
            .where(StoredApproval.id == approval_id)
            .values(claimed_at=datetime.now(UTC) - timedelta(hours=2))
        )
    decision = desk.approve("Mei Ling", approval_id)
    assert decision.approval.status == "approved"
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunded_cents == 2450


async def test_a_verified_owner_under_the_limit_is_paid_at_once(desk: Desk) -> None:
    """With the unverified rule off, a first small refund needs nobody; a second one waits."""
    profile = load_profile()
    settings = replace(profile.settings, refund_approval_when=("second_refund_on_order",))
    customer = Customer(desk.store, replace(profile, settings=settings))
    first = await customer.refund(["Garlic Bread"])
    assert first["approved"] is True
    second = await customer.refund(["Coca-Cola 330ml"])
    assert second["awaiting_approval"] is True
    assert "has had a refund before" in second["message"]


async def test_a_signed_in_owner_is_paid_at_once_under_the_limit(desk: Desk) -> None:
    """The business signed Omar in: his first small refund needs nobody; a larger one waits
    for the limit alone."""
    omar = VerifiedCustomer(id="cust-1", email="Omar@Example.com", name="Omar Haddad")
    customer = Customer(desk.store, signed_in=omar)
    small = await customer.refund(["Garlic Bread"])
    assert small["approved"] is True and small["amount_cents"] == 450
    desk.store.orders.add(_order("DD-2"))
    large = await customer.refund(["Family Pizza"], order_id="DD-2")
    assert large["awaiting_approval"] is True
    (waiting,) = desk.store.approvals.find(status="pending")
    assert waiting.rules == ("over_limit",)


@pytest.mark.parametrize("rejected", [True, False], ids=["rejected", "still-waiting"])
async def test_a_refund_a_person_rejected_is_not_paid_by_asking_again_for_less(
    desk: Desk, rejected: bool
) -> None:
    """Rejected (or still waiting) for the pizza and the bread, the bread alone (under the
    limit, a first refund, signed in) goes to a person too, not paid by the assistant."""
    omar = VerifiedCustomer(id="cust-1", email="Omar@Example.com", name="Omar Haddad")
    customer = Customer(desk.store, signed_in=omar)
    queued = await customer.refund(["Family Pizza", "Garlic Bread"])
    if rejected:
        desk.reject("Dan", queued["approval_id"], "the restaurant confirmed it left hot")
    again = await customer.refund(["Garlic Bread"])
    assert again["approved"] is False and again["awaiting_approval"] is True
    assert "already been asked" in again["message"]
    order = desk.store.orders.get("DD-1")
    assert order is not None and order.refunds == ()
    other = await customer.refund(["Coca-Cola 330ml"])  # items nobody was asked about
    assert other["approved"] is True
