"""Turning tool results into short replies for the offline assistant.

Every fact in a reply is read from the tool's result (or its arguments); when a result
has a shape we don't recognise, it is quoted rather than guessed at. The words around the
facts are the profile's (``replies.toml`` [results], [follow_ups], [errors]).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from helpline.models.offline_profile import Playbook
from helpline.money import format_money
from helpline.tools import ERROR_PREFIX, is_error_result

_QUOTE_LIMIT = 600


def format_date(value: str) -> str:
    """``2024-05-01`` → ``1 May 2024``; anything else is returned as given."""
    try:
        parsed = date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{parsed.day} {parsed.strftime('%B %Y')}"


def read_json(text: str) -> Any:
    """The JSON value of a tool result, or None when it is plain text."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1].rsplit(" ", 1)[0] + "…"


def _first(data: dict[str, Any], *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) not in (None, "", [])), None)


# Receipts ---------------------------------------------------------------------------------


def read_receipt(text: str) -> dict[str, Any] | None:
    """The receipt JSON of an ``analyze_receipt_image`` result, if it is one."""
    data = read_json(text)
    if isinstance(data, dict) and "total_in_cents" in data:
        return data
    return None


def _item_text(item: dict[str, Any], currency: str) -> str:
    quantity = item.get("quantity") or 1
    name = str(item.get("name", "item"))
    price = _first(item, "price_in_cents", "unit_price_cents", "amount_cents")
    label = f"{quantity} × {name}" if quantity != 1 else name
    return f"{label} ({format_money(price, currency)})" if isinstance(price, int) else label


def receipt_summary(receipt: dict[str, Any], currency: str) -> str:
    """One line for a ticket: ``Receipt dated 2024-05-01, total $23.47``.

    ``currency`` is the profile's, for a receipt that names none.
    """
    currency = str(receipt.get("currency") or currency)
    when = receipt.get("date")
    dated = f" dated {when}" if when else ""
    return f"Receipt{dated}, total {format_money(int(receipt['total_in_cents']), currency)}"


def receipt_items(receipt: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a receipt or an order result."""
    items = receipt.get("items")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _receipt(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    receipt = read_receipt(result)
    if receipt is None:
        return book.text("results", "receipt_unread", result=_quote(result))
    currency = str(receipt.get("currency") or book.currency)
    total = format_money(int(receipt["total_in_cents"]), currency)
    when = receipt.get("date")
    dated = book.text("results", "receipt_dated", date=format_date(str(when))) if when else ""
    items = [_item_text(i, currency) for i in receipt_items(receipt)]
    listed = (
        book.text(
            "results",
            "receipt_listed",
            count=len(items),
            items="items" if len(items) != 1 else "item",
            list=", ".join(items),
        )
        if items
        else ""
    )
    return book.text("results", "receipt", dated=dated, total=total, listed=listed)


# Tickets, orders, refunds, escalation, help centre ----------------------------------------------


def ticket_number(result: str) -> str | None:
    """The ticket number in a ``create_customer_ticket`` result (``#12``, ``{"id": 12}`` …)."""
    data = read_json(result)
    if isinstance(data, dict) and (found := _first(data, "number", "ticket_id", "id")) is not None:
        return str(found)
    match = re.search(r"#\s?(\w+)|\bticket\s+(?:id\s+|number\s+|no\.?\s+)?(\d+)", result, re.I)
    return (match.group(1) or match.group(2)) if match else None


def _ticket(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    number = ticket_number(result)
    issue = str(arguments.get("issue", ""))
    label = issue.partition(":")[0].partition(" / ")[0]
    about = (
        book.text("results", "ticket_about", label=label.lower())
        if label and len(label) < 30 and label != issue
        else ""
    )
    if number is None:
        return book.text("results", "ticket_unnumbered", about=about, result=_quote(result))
    return book.text("results", "ticket", number=number, about=about)


def _order_line(order: dict[str, Any], book: Playbook) -> str:
    currency = str(order.get("currency") or book.currency)

    def said(key: str, **fields: Any) -> str:
        return book.text("order_line", key, **fields)

    order_id = _first(order, "order_id", "id", "number")
    line = said("named", order_id=order_id) if order_id else said("unnamed")
    if (merchant := _first(order, "restaurant", "merchant", "store")) and book.order_from:
        line += " " + book.order_from.format(merchant=merchant)
    facts = []
    if status := _first(order, "status", "state"):
        facts.append(said("status", value=str(status).replace("_", " ")))
    if placed := _first(order, "placed_at", "created_at", "ordered_at", "date"):
        facts.append(said("placed", value=format_date(str(placed))))
    if eta := _first(order, "eta", "estimated_delivery", "estimated_delivery_at", "expected_at"):
        facts.append(said("expected", value=eta))
    if delivered := _first(order, "delivered_at"):
        facts.append(said("delivered", value=format_date(str(delivered))))
    if until := _first(order, "refundable_until"):
        facts.append(said("refundable", value=format_date(str(until))))
    total = _first(order, "total_cents", "total_in_cents")
    if isinstance(total, int):
        facts.append(said("total", value=format_money(total, currency)))
    line += f" ({', '.join(facts)})" if facts else ""
    items = order.get("items")
    if isinstance(items, list) and items:
        names = [i if isinstance(i, str) else _item_text(i, currency) for i in items]
        line += said("items", list=", ".join(names))
    refunds = order.get("refunds")
    if isinstance(refunds, list) and refunds:
        refunded = [str(r.get("item", r)) if isinstance(r, dict) else str(r) for r in refunds]
        line += said("refunded", list=", ".join(refunded))
    return line


def _order(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    data = read_json(result)
    if isinstance(data, dict):
        return book.text("results", "order", line=_order_line(data, book))
    return book.text(
        "results", "order_unread", order_id=arguments.get("order_id", ""), result=_quote(result)
    )


def _orders(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    data = read_json(result)
    if isinstance(data, dict):
        data = _first(data, "orders", "results", "data")
    if isinstance(data, list):
        if not data:
            return book.text("results", "orders_none", email=arguments.get("email", "you"))
        lines = [_order_line(o, book) if isinstance(o, dict) else str(o) for o in data[:5]]
        return book.text("results", "orders", list="\n".join(f"- {line}" for line in lines))
    return book.text("results", "orders_unread", result=_quote(result))


_REFUSED = re.compile(r"\b(?:refus|reject|denied|declin|not eligible|ineligible)", re.I)


def _refund(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    order_id = arguments.get("order_id", "")
    data = read_json(result)
    if isinstance(data, dict) and "approved" in data:
        message = str(_first(data, "message", "reason") or "")
        if data.get("awaiting_approval"):
            return message
        if data["approved"]:
            return message or book.text("results", "refund_approved", order_id=order_id)
        return book.text("results", "refund_refused", message=message).replace("  ", " ")
    key = "refund_not_approved" if _REFUSED.search(result) else "refund_other"
    return book.text("results", key, order_id=order_id, result=_quote(result))


def _escalation(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    data = read_json(result)
    message = _first(data, "message") if isinstance(data, dict) else None
    return book.text("results", "escalated", message=_quote(str(message or result)))


def help_passages(result: str) -> list[tuple[str, str]]:
    """(title, passage) pairs from a ``search_help_center`` result, best first."""
    data = read_json(result)
    if isinstance(data, dict):
        data = data.get("results", data.get("articles", data.get("passages", [data])))
    if isinstance(data, list):
        found = []
        for hit in data:
            if isinstance(hit, dict):
                passage = _first(hit, "passage", "text", "content", "snippet", "body", "answer")
                if passage:
                    title = _first(hit, "article", "title", "heading", "name") or ""
                    found.append((str(title), str(passage)))
        return found
    return [("", result)] if result.strip() else []


_NOTHING_FOUND = re.compile(r"^\s*(?:no (?:results|articles|matches|passages)|nothing found)", re.I)


def _help(arguments: dict[str, Any], result: str, book: Playbook) -> str:
    passages = [] if _NOTHING_FOUND.match(result) else help_passages(result)
    if not passages:
        return book.text("results", "help_none")
    title, passage = passages[0]
    key = "help" if title else "help_untitled"
    return book.text("results", key, title=title, passage=_quote(passage))


RENDERERS: dict[str, Callable[[dict[str, Any], str, Playbook], str]] = {
    "create_customer_ticket": _ticket,
    "analyze_receipt_image": _receipt,
    "search_help_center": _help,
    "lookup_order": _order,
    "list_recent_orders": _orders,
    "request_refund": _refund,
    "escalate_to_human": _escalation,
}

_CRASHED = re.compile(r"^\w+ failed \(\w+: ")


def explain_error(tool: str, result: str, book: Playbook) -> str:
    """A tool's ``Error: …`` text in plain words, with what the customer can do next."""
    detail = result.lstrip().removeprefix(ERROR_PREFIX).strip()
    detail = re.sub(r"\s*Tell the customer and offer a ticket\.?$", "", detail).rstrip(" .")
    detail = re.split(r"(?<=[.!?])\s+(?=[A-Z])", detail, maxsplit=1)[0].rstrip(" .")  # the fact
    if _CRASHED.match(detail):  # a bug's exception text means nothing to a customer
        detail = "our system had an unexpected problem"
    detail = detail[:1].lower() + detail[1:] if detail[:2].istitle() else detail
    return book.text("errors", tool, detail=detail or "no reason given")


def render_result(tool: str, arguments: dict[str, Any], result: str, book: Playbook) -> str:
    """A short reply for one tool result."""
    if is_error_result(result):
        return explain_error(tool, result, book)
    renderer = RENDERERS.get(tool)
    return renderer(arguments, result, book) if renderer else _quote(result)
