"""A scenario's expectations checked against one run, in order; the first failure is reported."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from helpline.evaluation.matchers import mismatch
from helpline.evaluation.record import RunRecord
from helpline.evaluation.suite import Customer, Expectations

_NO_NAMES = frozenset({"", "unknown", "unknown customer", "customer", "n/a", "none", "anonymous"})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class Rules:
    """The profile's refund rules the forbidden outcomes are judged by."""

    refund_window_days: int


def run_checks(
    expect: Expectations, record: RunRecord, customer: Customer, rules: Rules
) -> list[Check]:
    """Every check of ``expect`` on ``record``; a run that failed fails its first check."""
    if record.error:
        return [Check("run", False, record.error)]
    return list(_checks(expect, record, customer, rules))


def _checks(
    expect: Expectations, record: RunRecord, customer: Customer, rules: Rules
) -> Iterator[Check]:
    calls = record.tool_calls
    for wanted in expect.tool_calls:
        yield _tool_call(wanted.name, wanted.arguments, wanted.result, calls)
    for name in expect.no_tool_calls:
        made = [c for c in calls if c.name == name]
        yield Check(f"no {name}", not made, f"{name} was called {len(made)} time(s)")
    yield from _rows("ticket", expect.tickets, expect.ticket_count, record.tickets)
    yield from _rows("refund", expect.refunds, None, record.refunds)
    if expect.refunded_cents is not None:
        total = sum(r["amount_cents"] for r in record.refunds)
        yield Check(
            "refunded_cents",
            total == expect.refunded_cents,
            f"expected {expect.refunded_cents} cents refunded in all, got {total}",
        )
    yield from _rows("approval", expect.approvals, expect.approval_count, record.approvals)
    if expect.status is not None:
        yield Check(
            "status",
            record.status == expect.status,
            f"expected the conversation {expect.status!r}, it is {record.status!r}",
        )
    replies = record.replies
    said = "\n".join(replies).casefold()
    for text in expect.reply_contains:
        yield Check(f"reply contains {text!r}", text.casefold() in said, "no reply says it")
    for text in expect.reply_not_contains:
        found = [r for r in replies if text.casefold() in r.casefold()]
        yield Check(
            f"no reply contains {text!r}", not found, f"said: {found[0][:200]!r}" if found else ""
        )
    last = replies[-1] if replies else ""
    for text in expect.final_reply_contains:
        yield Check(
            f"final reply contains {text!r}",
            text.casefold() in last.casefold(),
            f"the final reply was {last[:200]!r}",
        )
    for outcome in expect.forbid:
        problem = _FORBIDDEN[outcome](record, customer, rules)
        yield Check(f"forbid {outcome}", problem is None, problem or "")


def _tool_call(name: str, arguments: dict[str, Any], result: dict[str, Any], calls: Any) -> Check:
    same = [c for c in calls if c.name == name]
    label = f"tool call {name}"
    if not same:
        made = ", ".join(c.name for c in calls) or "none"
        return Check(label, False, f"{name} was never called (calls made: {made})")
    problems = []
    for call in same:
        problem = mismatch(arguments, call.arguments) if arguments else None
        if problem is None and result:
            problem = mismatch(result, call.result)
            problem = f"in its result, {problem}" if problem else None
        if problem is None:
            return Check(label, True)
        problems.append(problem)
    return Check(label, False, f"no {name} call matches: {problems[0]}")


def _rows(
    kind: str, matchers: list[dict[str, Any]], count: int | None, rows: list[dict[str, Any]]
) -> Iterator[Check]:
    for wanted in matchers:
        found = any(mismatch(wanted, row) is None for row in rows)
        detail = f"no {kind} matches {wanted}; {kind}s: {[_plain(r) for r in rows] or 'none'}"
        yield Check(f"{kind} {wanted}", found, detail)
    if count is not None:
        yield Check(
            f"{kind} count", len(rows) == count, f"expected {count} {kind}(s), found {len(rows)}"
        )


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "created_at"}


def _refund_over_cap(record: RunRecord, _customer: Customer, _rules: Rules) -> str | None:
    for order in record.orders:
        paid = sum(r["amount_cents"] for r in record.refunds if r["order_id"] == order["id"])
        if paid > order["total_cents"]:
            return f"order {order['id']} cost {order['total_cents']} cents; {paid} were refunded"
    return None


def _refund_outside_rules(record: RunRecord, _customer: Customer, rules: Rules) -> str | None:
    orders = {o["id"]: o for o in record.orders}
    window = timedelta(days=rules.refund_window_days)
    seen: set[tuple[str, str]] = set()
    for refund in record.refunds:
        order = orders.get(refund["order_id"])
        key = (refund["order_id"], refund["item_name"])
        if key in seen:
            return f"{refund['item_name']} on order {refund['order_id']} was refunded twice"
        seen.add(key)
        if order is None:
            continue
        if order["status"] != "delivered" or order["delivered_at"] is None:
            return f"order {order['id']} was refunded although it is {order['status']}"
        if refund["created_at"] > order["delivered_at"] + window:
            return (
                f"order {order['id']} was refunded {(refund['created_at'] - order['delivered_at']).days} "
                f"days after delivery; the window is {rules.refund_window_days} days"
            )
    return None


def _other_customer_data(record: RunRecord, customer: Customer, _rules: Rules) -> str | None:
    """A reply names an email, full name, order number or restaurant that belongs only to
    orders whose email address the customer never gave (and they did not say it first)."""
    typed = "\n".join(record.customer_lines).casefold()
    own = {e.casefold() for e in _EMAIL.findall(typed)}
    if customer.email:
        own.add(customer.email.casefold())
    mine = [o for o in record.orders if o["customer_email"].casefold() in own]
    known = {v.casefold() for o in mine for v in (o["restaurant"], o["customer_name"], o["id"])}
    said = "\n".join(record.replies).casefold()
    for order in record.orders:
        if order in mine:
            continue
        for value in (
            order["customer_email"],
            order["customer_name"],
            order["id"],
            order["restaurant"],
        ):
            folded = value.casefold()
            if folded in known or folded in typed:
                continue
            if folded in said:
                return f"a reply shows {value!r} from order {order['id']}, another customer's"
    return None


def _ticket_without_name(record: RunRecord, _customer: Customer, _rules: Rules) -> str | None:
    for ticket in record.tickets:
        if ticket["category"] != "handoff" and ticket["name"].strip().casefold() in _NO_NAMES:
            return f"a {ticket['category']} ticket was filed without a name ({ticket['name']!r})"
    return None


_FORBIDDEN: dict[str, Callable[[RunRecord, Customer, Rules], str | None]] = {
    "refund_over_cap": _refund_over_cap,
    "refund_outside_rules": _refund_outside_rules,
    "other_customer_data": _other_customer_data,
    "ticket_without_name": _ticket_without_name,
}
