"""Which refunds wait for a person, and what the customer is told about them.

The profile decides (``[policy]`` in ``profile.toml``): a refund above
``refund_approval_over`` (in the profile's currency), and those ``refund_approval_when``
names — ``second_refund_on_order`` (the order had a refund already) and
``customer_not_verified`` (the business has not signed the customer in) — are queued for an
agent instead of being paid. Whatever the profile says, items a person rejected, or is
still to decide on, go to a person again: asking anew, for less, never pays them. The rules
that refuse a refund outright run first, in :mod:`helpline.support.orders`; these only decide
who says yes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helpline.money import format_money, minor_units
from helpline.store import ApprovalInfo, Order, Refund
from helpline.support.profile import Settings

OVER_LIMIT = "over_limit"
SECOND_REFUND = "second_refund_on_order"
NOT_VERIFIED = "customer_not_verified"
ASKED_BEFORE = "asked_of_a_person_before"
_UNDECIDED_OR_REJECTED = frozenset({"pending", "approving", "rejected"})


def approval_rules(
    settings: Settings,
    order: Order,
    refunds: Sequence[Refund],
    verified: bool,
    earlier: Sequence[ApprovalInfo] = (),
) -> list[str]:
    """The rules that make these refunds wait for a person; empty when they may be paid now.
    ``earlier`` are the order's approvals so far."""
    rules = []
    limit = settings.refund_approval_over
    if limit is not None:
        total = sum(refund.amount_cents for refund in refunds)
        other_currency = order.currency.upper() != settings.currency.upper()
        if other_currency or total > minor_units(limit, settings.currency):
            rules.append(OVER_LIMIT)
    if SECOND_REFUND in settings.refund_approval_when and order.refunds:
        rules.append(SECOND_REFUND)
    if NOT_VERIFIED in settings.refund_approval_when and not verified:
        rules.append(NOT_VERIFIED)
    asked = {refund.item_name for refund in refunds}
    if any(a.status in _UNDECIDED_OR_REJECTED and asked & set(a.items) for a in earlier):
        rules.append(ASKED_BEFORE)
    return rules


def explain_rules(settings: Settings, order: Order, rules: Sequence[str]) -> str:
    """Why a person decides, in one sentence's worth of clauses."""
    limit = settings.refund_approval_over
    same_currency = order.currency.upper() == settings.currency.upper()
    over = (
        f"it is over {format_money(minor_units(limit, settings.currency), settings.currency)}"
        if limit is not None and same_currency
        else f"it is in {order.currency}, not {settings.currency}"
    )
    reasons = {
        OVER_LIMIT: over,
        SECOND_REFUND: f"order {order.id} has had a refund before",
        NOT_VERIFIED: "the conversation is not signed in to a customer account",
        ASKED_BEFORE: "a person from our team has already been asked about refunding these items",
    }
    return ", and ".join(reasons[rule] for rule in rules)


def awaiting_result(approval: ApprovalInfo) -> dict[str, Any]:
    """The ``request_refund`` result for a refund queued for a person."""
    money = format_money(approval.amount_cents, approval.currency)
    return {
        "approved": False,
        "awaiting_approval": True,
        "approval_id": approval.id,
        "order_id": approval.order_id,
        "items": approval.items,
        "amount_cents": approval.amount_cents,
        "currency": approval.currency,
        "ticket_id": approval.ticket_id,
        "message": (
            f"Your refund of {money} for {', '.join(approval.items)} on order "
            f"{approval.order_id} awaits approval by a person from our support team, because "
            f"{approval.why}. Nothing is paid until then. They will approve or reject it and "
            "tell you here in this chat, also if you leave this page and come back later."
            + (f" Your reference is ticket #{approval.ticket_id}." if approval.ticket_id else "")
        ),
    }


def decided_result(approval: ApprovalInfo) -> dict[str, Any]:
    """The ``request_refund`` result when a retried request finds its approval decided."""
    if approval.status == "approved":
        return {
            "approved": True,
            "approval_id": approval.id,
            "order_id": approval.order_id,
            "amount_cents": approval.amount_cents,
            "currency": approval.currency,
            "ticket_id": approval.ticket_id,
            "message": approved_note(approval, approval.refunds),
        }
    if approval.status in ("pending", "approving"):
        return awaiting_result(approval)
    return {
        "approved": False,
        "rule": "rejected_by_agent" if approval.status == "rejected" else "not_recorded",
        "message": rejected_note(approval)
        if approval.status == "rejected"
        else failed_note(approval, approval.decision_note or ""),
        "next_step": "Tell the customer the team's decision as it is.",
    }


def approved_note(approval: ApprovalInfo, recorded: Sequence[Refund]) -> str:
    """What the customer reads in their chat when a person approved their refund."""
    total = sum(refund.amount_cents for refund in recorded)
    names = ", ".join(refund.item_name for refund in recorded)
    note = (
        f"Good news: your refund of {format_money(total, approval.currency)} for {names} on "
        f"order {approval.order_id} has been approved by our support team. It goes back to the "
        "payment method you used for the order."
    )
    if total < approval.amount_cents:
        note += (
            f" It is less than the {format_money(approval.amount_cents, approval.currency)} "
            "asked for, because refunds never exceed what was paid for the order."
        )
    return note + (f" (Ticket #{approval.ticket_id}.)" if approval.ticket_id else "")


def rejected_note(approval: ApprovalInfo) -> str:
    """What the customer reads when a person rejected their refund, and why."""
    money = format_money(approval.amount_cents, approval.currency)
    return (
        f"Our support team looked at your refund of {money} on order {approval.order_id} and "
        f"couldn't approve it: {approval.decision_note} Nothing has been refunded. If you "
        "have questions about this, reply here."
    )


def failed_note(approval: ApprovalInfo, problem: str) -> str:
    """What the customer reads when an approved refund could not be recorded."""
    return (
        f"Our support team approved your refund on order {approval.order_id}, but it could not "
        f"be paid: {problem} Nothing more has been refunded. Reply here if something is wrong."
    )
