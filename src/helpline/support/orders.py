"""Orders and refunds: the order system behind the tools, the refund rules, and the tools.

The tools ``lookup_order``, ``list_recent_orders`` and ``request_refund`` read orders from an
:class:`OrderSystem`. By default that is Helpline's own database (``store.orders``); to use
your shop's order system, implement the three methods and hand it to :func:`order_tools`::

    import threading
    from collections.abc import Sequence
    from dataclasses import replace
    from datetime import UTC, datetime

    from helpline.store import AlreadyRefunded, NothingLeftToRefund, Order, OrderItem, Refund
    from helpline.support.orders import order_tools
    from helpline.support.profile import load_profile


    class ShopOrders:
        '''Orders from your own backend (here: a dict).'''

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.orders = {
                "SH-1": Order(
                    id="SH-1", customer_name="Ada", customer_email="ada@example.com",
                    placed_at=datetime.now(UTC), delivered_at=datetime.now(UTC),
                    status="delivered", currency="EUR", total_cents=1200,
                    restaurant="Pasta Place", items=(OrderItem("Lasagne", 1, 1200),),
                )
            }

        def get(self, order_id: str) -> Order | None:
            return self.orders.get(order_id)

        def recent_for_customer(self, email: str, limit: int = 5) -> list[Order]:
            wanted = email.casefold()
            return [o for o in self.orders.values()
                    if o.customer_email.casefold() == wanted][:limit]

        def record_refunds(self, order_id: str, refunds: Sequence[Refund]) -> list[Refund]:
            with self.lock:  # a real shop locks the order row in its own database
                order = self.orders[order_id]
                if {r.item_name for r in order.refunds} & {r.item_name for r in refunds}:
                    raise AlreadyRefunded(order_id)
                left = order.total_cents - order.refunded_cents
                if left <= 0:
                    raise NothingLeftToRefund(order_id)
                recorded = []
                for refund in refunds:
                    recorded.append(replace(refund, amount_cents=min(refund.amount_cents, left)))
                    left -= recorded[-1].amount_cents
                self.orders[order_id] = replace(order, refunds=order.refunds + tuple(recorded))
                return recorded


    tools = order_tools(load_profile(), ShopOrders())  # offer these to the assistant

The refund rules are enforced here, in code, whatever the model says: a refund is possible
only for a delivered order, within the profile's ``refund_window_days`` after delivery, for
items on the order, each item once, and never for more than the customer paid. The last two
hold under concurrent requests only if ``record_refunds`` checks them again while it holds the
order (a row lock, a transaction): the tools check first to explain a refusal, but the order
system's record step is what decides.

An order is shown or refunded only to someone who knows the email address on it as well as
its number, and a wrong address gets the same answer as a wrong number, so nobody reads
another customer's orders or learns which order numbers exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import Field, StringConstraints

from helpline.money import format_money
from helpline.store.orders import (
    AlreadyRefunded,
    NothingLeftToRefund,
    Order,
    OrderItem,
    Refund,
)
from helpline.store.tables import utcnow
from helpline.store.tickets import TicketLimitReached
from helpline.support.approvals import (
    approval_rules,
    awaiting_result,
    decided_result,
    explain_rules,
)
from helpline.support.profile import Profile, Settings
from helpline.tools import Tool, ToolContext, ToolError, tool

OrderId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
T = TypeVar("T")


class OrderSystem(Protocol):
    """Where orders live. ``store.orders`` is one; implement these three methods for your own."""

    def get(self, order_id: str) -> Order | None:
        """The order with this id, or ``None``."""
        ...

    def recent_for_customer(self, email: str, limit: int = 5) -> list[Order]:
        """The latest orders placed with this email address, newest first."""
        ...

    def record_refunds(self, order_id: str, refunds: Sequence[Refund]) -> Sequence[Refund]:
        """Record the refunds, all or none, atomically with these checks, and return them as
        recorded: raise ``AlreadyRefunded`` if an item already has one, ``NothingLeftToRefund``
        if everything paid is refunded, and trim amounts to what is left of the total."""
        ...


def normalize_order_id(order_id: str) -> str:
    """Order numbers as customers type them: ``#dd-10234`` is ``DD-10234``."""
    return order_id.strip().lstrip("#").strip().upper()


def refundable_until(order: Order, window_days: int) -> datetime | None:
    """The last moment a refund may be asked for; ``None`` before delivery."""
    if order.delivered_at is None:
        return None
    return order.delivered_at + timedelta(days=window_days)


class _Refusal(Exception):
    """A refund rule said no: which rule, why, and what the customer can do instead."""

    def __init__(self, rule: str, message: str, next_step: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.next_step = next_step

    def result(self) -> dict[str, Any]:
        return {
            "approved": False,
            "rule": self.rule,
            "message": self.message,
            "next_step": self.next_step,
        }


_ASK_A_PERSON = "If the customer still needs help, offer to connect them with a person."


def _unknown_order(order_id: str, email: str) -> _Refusal:
    return _Refusal(
        "unknown_order",
        f"There is no order {order_id} for {email}. Check the order number in the app under "
        "Orders or in the confirmation email, and the email address the customer orders with.",
        "If the customer doesn't have the number, find the order with list_recent_orders and "
        "the email address they order with.",
    )


def _checked_email(email: str) -> str:
    if "@" not in email.strip("@") or any(c.isspace() for c in email):
        raise ToolError(
            f"{email!r} is not an email address. Orders are shown only to someone who gives "
            "the email address on the order: ask the customer for it."
        )
    return email


def _owner_email(context: ToolContext, email: str | None) -> str:
    """Whose orders this conversation may open: a signed-in customer's own, whatever email
    the model passes; otherwise the owner of the email address the customer gave."""
    if context.customer is not None:
        return context.customer.email
    if email is None:
        raise ToolError(
            "Orders are shown only to someone who gives the email address on the order: "
            "ask the customer for it."
        )
    return _checked_email(email)


def _verified(orders: OrderSystem, order_id: str, email: str) -> Order | None:
    """The order, for someone who knows the email address on it; otherwise ``None``."""
    order = orders.get(order_id)
    if order is None or order.customer_email.casefold() != _checked_email(email).casefold():
        return None
    return order


def _counted(context: ToolContext, settings: Settings, find: Callable[[], T]) -> T:
    """Run one order look-up within the conversation's limits and count whether it found."""
    lookups = context.store.order_lookups
    lookup = lookups.begin(
        context.conversation_id,
        settings.order_lookups_per_conversation,
        settings.failed_order_lookups_per_conversation,
    )
    if lookup is None:
        raise ToolError(
            "No more orders can be looked up in this conversation: it has looked up as many "
            "as one conversation may. Offer to connect the customer with a person, who can "
            "check their orders."
        )
    found = find()
    lookups.finish(lookup, bool(found))
    return found


def _squash(name: str) -> str:
    return " ".join(name.casefold().split())


def _match_items(order: Order, names: Sequence[str]) -> list[OrderItem]:
    """The order's items named by the customer: exact name first, else one partial match."""
    matched: list[OrderItem] = []
    unknown: list[str] = []
    for name in names:
        wanted = _squash(name)
        exact = [i for i in order.items if _squash(i.name) == wanted]
        partial = [i for i in order.items if wanted in _squash(i.name) or _squash(i.name) in wanted]
        found = exact or (partial if len(partial) == 1 else [])
        if not found:
            unknown.append(name)
        elif found[0] not in matched:
            matched.append(found[0])
    if unknown:
        on_order = ", ".join(i.name for i in order.items)
        raise _Refusal(
            "unknown_item",
            f"Order {order.id} has no item called {', '.join(repr(u) for u in unknown)}. "
            f"It contains: {on_order}.",
            "Ask the customer which of these items the problem was with, then try again "
            "with their exact names.",
        )
    return matched


def _check_refundable(
    order: Order, items: list[OrderItem], window_days: int, now: datetime
) -> None:
    """Raise a refusal naming the rule a refund of ``items`` would break."""
    refunded = {r.item_name: r for r in order.refunds}
    repeats = [refunded[i.name] for i in items if i.name in refunded]
    if repeats:
        done = ", ".join(
            f"{r.item_name} ({format_money(r.amount_cents, order.currency)}"
            + (f", ticket #{r.ticket_id})" if r.ticket_id else ")")
            for r in repeats
        )
        raise _Refusal(
            "already_refunded",
            f"Already refunded on order {order.id}: {done}. Each item can be refunded once.",
            "Tell the customer the earlier refund stands. " + _ASK_A_PERSON,
        )
    deadline = refundable_until(order, window_days)
    if order.delivered_at is None or deadline is None:
        raise _Refusal(
            "not_delivered",
            f"Order {order.id} is {order.status} and was never marked delivered; "
            "refunds are for delivered orders.",
            "If it is on its way, tell the customer to follow it in the app. If it was "
            "cancelled or never arrived, offer to connect them with a person.",
        )
    if now > deadline:
        raise _Refusal(
            "refund_window",
            f"Order {order.id} was delivered on {order.delivered_at:%Y-%m-%d}, more than "
            f"{window_days} days ago; refunds are possible for {window_days} days after delivery.",
            _ASK_A_PERSON,
        )
    if order.total_cents - order.refunded_cents <= 0:
        raise _Refusal(
            "amount_cap",
            f"Everything paid for order {order.id} "
            f"({format_money(order.total_cents, order.currency)}) has already been refunded.",
            _ASK_A_PERSON,
        )


def _plan_refunds(
    order: Order, items: list[OrderItem], reason: str, request_id: str, now: datetime
) -> list[Refund]:
    """One refund per item, trimmed so the order never pays back more than was paid."""
    left = order.total_cents - order.refunded_cents
    refunds = []
    for item in items:
        amount = min(item.total_cents, left)
        left -= amount
        refunds.append(
            Refund(item.name, item.quantity, amount, reason, request_id=request_id, created_at=now)
        )
    return refunds


def _refund_issue(order: Order, amount_cents: int, items: list[OrderItem], reason: str) -> str:
    """The refund ticket's issue line, for the agents."""
    names = ", ".join(i.name for i in items)
    money = format_money(amount_cents, order.currency)
    return f"Refund of {money} on order {order.id} for {names}: {reason}"


def _approved(
    order: Order, refunds: Sequence[Refund], ticket_id: int, requested_cents: int
) -> dict[str, Any]:
    total = sum(r.amount_cents for r in refunds)
    names = ", ".join(r.item_name for r in refunds)
    message = (
        f"Refund of {format_money(total, order.currency)} approved for {names} on order {order.id} "
        f"(ticket #{ticket_id}). It goes back to the payment method used for the order."
    )
    if total < requested_cents:
        message += (
            f" The items cost {format_money(requested_cents, order.currency)}, but refunds never exceed "
            f"what was paid for the order ({format_money(order.total_cents, order.currency)})."
        )
    return {
        "approved": True,
        "order_id": order.id,
        "items": [
            {"name": r.item_name, "quantity": r.quantity, "amount_cents": r.amount_cents}
            for r in refunds
        ],
        "amount_cents": total,
        "currency": order.currency,
        "ticket_id": ticket_id,
        "message": message,
    }


def _summary(order: Order, window_days: int) -> dict[str, Any]:
    deadline = refundable_until(order, window_days)
    return {
        "order_id": order.id,
        "restaurant": order.restaurant,
        "status": order.status,
        "placed_at": order.placed_at.isoformat(),
        "delivered_at": order.delivered_at.isoformat() if order.delivered_at else None,
        "total_cents": order.total_cents,
        "currency": order.currency,
        "refundable_until": deadline.isoformat() if deadline else None,
    }


def _details(order: Order, window_days: int) -> dict[str, Any]:
    return {
        **_summary(order, window_days),
        "customer_name": order.customer_name,
        "items": [
            {"name": i.name, "quantity": i.quantity, "unit_price_cents": i.unit_price_cents}
            for i in order.items
        ],
        "refunds": [
            {"item": r.item_name, "amount_cents": r.amount_cents, "ticket_id": r.ticket_id}
            for r in order.refunds
        ],
    }


def order_tools(profile: Profile, system: OrderSystem | None = None) -> list[Tool]:
    """``lookup_order``, ``list_recent_orders`` and ``request_refund`` over ``system``.

    Without ``system``, orders come from the conversation's store (``context.store.orders``).
    """
    settings = profile.settings
    window_days = settings.refund_window_days
    ticket_limit = profile.settings.tickets_per_conversation

    def orders_of(context: ToolContext) -> OrderSystem:
        return system if system is not None else context.store.orders

    @tool(activity="Looking up your order", done="Order looked up")
    def lookup_order(
        order_id: OrderId, context: ToolContext, email: Email | None = None
    ) -> dict[str, Any]:
        """Look up one order: status, delivery time, items, prices, refunds and the refund deadline.

        Args:
            order_id: The order number, e.g. DD-10234.
            email: The email address the customer orders with (the order must be theirs); leave it out when the customer is signed in.
        """
        wanted = normalize_order_id(order_id)
        email = _owner_email(context, email)
        order = _counted(context, settings, lambda: _verified(orders_of(context), wanted, email))
        if order is None:
            raise ToolError(_unknown_order(wanted, email).message)
        return _details(order, window_days)

    @tool(activity="Looking up your orders", done="Orders looked up")
    def list_recent_orders(context: ToolContext, email: Email | None = None) -> dict[str, Any]:
        """List a customer's five most recent orders, to find the order they mean.

        Args:
            email: The email address on the customer's account; leave it out when the customer is signed in.
        """
        email = _owner_email(context, email)
        found = _counted(
            context, settings, lambda: orders_of(context).recent_for_customer(email, limit=5)
        )
        if not found:
            return {
                "orders": [],
                "message": f"No orders found for {email}. Check the email address the customer "
                "orders with, or ask for the order number.",
            }
        return {"orders": [_summary(o, window_days) for o in found]}

    @tool(activity="Requesting a refund", done="Refund requested")
    def request_refund(
        order_id: OrderId,
        items: Annotated[list[Text], Field(min_length=1, max_length=50)],
        reason: Text,
        context: ToolContext,
        email: Email | None = None,
    ) -> dict[str, Any]:
        """Refund items of an order that were missing, wrong, damaged or cold, and file a refund ticket.

        The refund rules are checked here; report the result to the customer as it is.

        Args:
            order_id: The order number, e.g. DD-10234.
            email: The email address the customer orders with (the order must be theirs); leave it out when the customer is signed in.
            items: Names of the affected items, as listed on the order.
            reason: What went wrong, in the customer's words, e.g. "pizza arrived cold".
        """
        orders = orders_of(context)
        wanted = normalize_order_id(order_id)
        email = _owner_email(context, email)
        order = _counted(context, settings, lambda: _verified(orders, wanted, email))
        verified = order is not None and _signed_in_as_owner(context, order)
        try:
            if order is None:
                raise _unknown_order(wanted, email)
            queued = context.store.approvals.for_request(
                context.conversation_id, context.tool_call_id
            )
            if queued is not None:  # this very call queued its refund before
                return decided_result(queued)
            chosen = _match_items(order, items)
            requested = sum(i.total_cents for i in chosen)
            filed = context.store.tickets.by_tool_call(
                context.conversation_id, context.tool_call_id
            )
            earlier = [r for r in order.refunds if filed and r.ticket_id == filed.id]
            replayed = bool(earlier) and {r.item_name for r in earlier} == {i.name for i in chosen}
            if replayed:  # this very call went through before and is being retried
                planned = earlier
            else:
                now = utcnow()
                _check_refundable(order, chosen, window_days, now)
                planned = _plan_refunds(order, chosen, reason, context.tool_call_id, now)
            amount = sum(r.amount_cents for r in planned)
            waits_for = []
            if not replayed:
                asked = context.store.approvals.find(order_id=order.id)
                waits_for = approval_rules(settings, order, planned, verified, asked)
            if waits_for:
                return _queue_for_approval(context, order, chosen, planned, waits_for, reason)
            tickets = context.store.tickets
            try:
                ticket, _ = tickets.create(  # one ticket per call, also when retried
                    order.customer_name,
                    _refund_issue(order, amount, chosen, reason),
                    conversation_id=context.conversation_id,
                    tool_call_id=context.tool_call_id,
                    category="refund",
                    amount_cents=amount,
                    limit=ticket_limit,
                )
            except TicketLimitReached as exc:
                raise _Refusal(
                    "ticket_limit", f"No refund was made: {exc}.", _ASK_A_PERSON
                ) from exc
            refunds = [replace(r, ticket_id=ticket.id) for r in planned]
            if not replayed:
                try:
                    refunds = list(orders.record_refunds(order.id, refunds))
                except AlreadyRefunded as exc:
                    tickets.set_status(ticket.id, "closed")
                    raise _Refusal(
                        "already_refunded",
                        f"These items were refunded by another request just now ({exc}).",
                        "Tell the customer the earlier refund stands.",
                    ) from exc
                except NothingLeftToRefund as exc:
                    tickets.set_status(ticket.id, "closed")
                    raise _Refusal(
                        "amount_cap",
                        f"Everything paid for order {order.id} "
                        f"({format_money(order.total_cents, order.currency)}) has been refunded, "
                        "partly by another request just now.",
                        _ASK_A_PERSON,
                    ) from exc
                recorded = sum(r.amount_cents for r in refunds)
                if recorded != amount:  # a concurrent refund left less than planned
                    issue = _refund_issue(order, recorded, chosen, reason)
                    tickets.revise_amount(ticket.id, recorded, issue)
            return _approved(order, refunds, ticket.id, requested)
        except _Refusal as refusal:
            return refusal.result()

    def _queue_for_approval(
        context: ToolContext,
        order: Order,
        chosen: list[OrderItem],
        planned: list[Refund],
        rules: list[str],
        reason: str,
    ) -> dict[str, Any]:
        """File the refund ticket and queue the refunds for a person; nothing is paid yet."""
        why = explain_rules(settings, order, rules)
        amount = sum(r.amount_cents for r in planned)
        try:
            ticket, _ = context.store.tickets.create(
                order.customer_name,
                _refund_issue(order, amount, chosen, reason) + f" (awaits approval: {why})",
                conversation_id=context.conversation_id,
                tool_call_id=context.tool_call_id,
                category="refund",
                amount_cents=amount,
                limit=ticket_limit,
            )
        except TicketLimitReached as exc:
            raise _Refusal("ticket_limit", f"No refund was made: {exc}.", _ASK_A_PERSON) from exc
        approval, _ = context.store.approvals.queue(
            conversation_id=context.conversation_id,
            request_id=context.tool_call_id,
            ticket_id=ticket.id,
            order_id=order.id,
            currency=order.currency,
            refunds=[replace(r, ticket_id=ticket.id) for r in planned],
            rules=rules,
            why=why,
        )
        return awaiting_result(approval)

    return [lookup_order, list_recent_orders, request_refund]


def _signed_in_as_owner(context: ToolContext, order: Order) -> bool:
    """Whether the business signed in the customer this order belongs to."""
    customer = context.customer
    return customer is not None and customer.email.casefold() == order.customer_email.casefold()
