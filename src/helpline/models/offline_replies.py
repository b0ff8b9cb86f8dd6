"""Turning tool results into short replies for the offline assistant.

Every fact in a reply is read from the tool's result (or its arguments); when a result
has a shape we don't recognise, it is quoted rather than guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Any

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


def receipt_summary(receipt: dict[str, Any]) -> str:
    """One line for a ticket: ``Receipt dated 2024-05-01, total $23.47``."""
    currency = str(receipt.get("currency") or "USD")
    when = receipt.get("date")
    dated = f" dated {when}" if when else ""
    return f"Receipt{dated}, total {format_money(int(receipt['total_in_cents']), currency)}"


def receipt_items(receipt: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a receipt or an order result."""
    items = receipt.get("items")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _receipt(arguments: dict[str, Any], result: str) -> str:
    receipt = read_receipt(result)
    if receipt is None:
        return f"Here's what I could read from the receipt: {_quote(result)}"
    currency = str(receipt.get("currency") or "USD")
    total = format_money(int(receipt["total_in_cents"]), currency)
    when = receipt.get("date")
    dated = f" from {format_date(str(when))}" if when else ""
    items = [_item_text(i, currency) for i in receipt_items(receipt)]
    listed = (
        f" for {len(items)} item{'s' if len(items) != 1 else ''}: {', '.join(items)}"
        if items
        else ""
    )
    return f"Your receipt{dated} comes to {total}{listed}."


# Tickets, orders, refunds, escalation, help centre ----------------------------------------------


def ticket_number(result: str) -> str | None:
    """The ticket number in a ``create_customer_ticket`` result (``#12``, ``{"id": 12}`` …)."""
    data = read_json(result)
    if isinstance(data, dict) and (found := _first(data, "number", "ticket_id", "id")) is not None:
        return str(found)
    match = re.search(r"#\s?(\w+)|\bticket\s+(?:id\s+|number\s+|no\.?\s+)?(\d+)", result, re.I)
    return (match.group(1) or match.group(2)) if match else None


def _ticket(arguments: dict[str, Any], result: str) -> str:
    number = ticket_number(result)
    issue = str(arguments.get("issue", ""))
    label = issue.partition(":")[0].partition(" / ")[0]
    about = f" about your {label.lower()}" if label and len(label) < 30 and label != issue else ""
    if number is None:
        return f"I've filed a ticket{about}: {_quote(result)}"
    return f"Done: I've filed ticket #{number}{about}. Our support team will follow up with you."


def _order_line(order: dict[str, Any]) -> str:
    order_id = _first(order, "order_id", "id", "number")
    parts = [f"Order {order_id}" if order_id else "Your order"]
    if restaurant := _first(order, "restaurant", "merchant", "store"):
        parts[0] += f" from {restaurant}"
    facts = []
    if status := _first(order, "status", "state"):
        facts.append(f"status: {str(status).replace('_', ' ')}")
    if placed := _first(order, "placed_at", "created_at", "ordered_at", "date"):
        facts.append(f"placed {format_date(str(placed))}")
    if eta := _first(order, "eta", "estimated_delivery", "estimated_delivery_at", "expected_at"):
        facts.append(f"expected {eta}")
    if delivered := _first(order, "delivered_at"):
        facts.append(f"delivered {format_date(str(delivered))}")
    if until := _first(order, "refundable_until"):
        facts.append(f"refunds possible until {format_date(str(until))}")
    total = _first(order, "total_cents", "total_in_cents")
    if isinstance(total, int):
        facts.append(f"total {format_money(total, str(order.get('currency') or 'USD'))}")
    line = parts[0] + (f" ({', '.join(facts)})" if facts else "")
    items = order.get("items")
    if isinstance(items, list) and items:
        names = [
            i if isinstance(i, str) else _item_text(i, str(order.get("currency") or "USD"))
            for i in items
        ]
        line += f"; items: {', '.join(names)}"
    refunds = order.get("refunds")
    if isinstance(refunds, list) and refunds:
        line += f"; already refunded: {', '.join(str(r.get('item', r)) if isinstance(r, dict) else str(r) for r in refunds)}"
    return line


def _order(arguments: dict[str, Any], result: str) -> str:
    data = read_json(result)
    if isinstance(data, dict):
        return _order_line(data) + "."
    return f"Here's what I found for order {arguments.get('order_id', '')}: {_quote(result)}"


def _orders(arguments: dict[str, Any], result: str) -> str:
    data = read_json(result)
    if isinstance(data, dict):
        data = _first(data, "orders", "results", "data")
    if isinstance(data, list):
        if not data:
            return f"I couldn't find any orders for {arguments.get('email', 'you')}. Is that the email address you order with? If you have the order number, send it too."
        lines = [_order_line(o) if isinstance(o, dict) else str(o) for o in data[:5]]
        return (
            "Your recent orders:\n"
            + "\n".join(f"- {line}" for line in lines)
            + "\nWhich one is it about?"
        )
    return f"Here are your recent orders: {_quote(result)}"


_REFUSED = re.compile(r"\b(?:refus|reject|denied|declin|not eligible|ineligible)", re.I)


def _refund(arguments: dict[str, Any], result: str) -> str:
    order_id = arguments.get("order_id", "")
    data = read_json(result)
    if isinstance(data, dict) and "approved" in data:
        message = str(_first(data, "message", "reason") or "")
        if data["approved"]:
            return message or f"The refund for order {order_id} is approved."
        return (
            f"I'm sorry, I couldn't refund that. {message} "
            "If you think that's wrong, I can pass it to a person on our team."
        ).replace("  ", " ")
    if _REFUSED.search(result):
        return f"I'm sorry, the refund for order {order_id} wasn't approved: {_quote(result)}"
    return f"Refund for order {order_id}: {_quote(result)}"


def _escalation(arguments: dict[str, Any], result: str) -> str:
    data = read_json(result)
    message = _first(data, "message") if isinstance(data, dict) else None
    return f"I've passed this to a person on our support team. {_quote(str(message or result))}"


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


def _help(arguments: dict[str, Any], result: str) -> str:
    passages = [] if _NOTHING_FOUND.match(result) else help_passages(result)
    if not passages:
        return "I couldn't find an answer to that in the help centre. I can file a ticket so a person answers you."
    title, passage = passages[0]
    source = f'the help centre article "{title}"' if title else "the help centre"
    return f"From {source}:\n{_quote(passage)}"


RENDERERS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "create_customer_ticket": _ticket,
    "analyze_receipt_image": _receipt,
    "search_help_center": _help,
    "lookup_order": _order,
    "list_recent_orders": _orders,
    "request_refund": _refund,
    "escalate_to_human": _escalation,
}

FOLLOW_UPS: dict[str, str] = {
    "analyze_receipt_image": "Is something wrong with it? Tell me what, and I can file a ticket.",
    "search_help_center": "Did that answer your question?",
    "lookup_order": "Is there a problem with this order?",
    "list_recent_orders": "",  # the list ends by asking which order it is about
}
DEFAULT_FOLLOW_UP = "Is there anything else I can help with?"

# What to tell the customer when a tool failed: {detail} is the tool's own explanation.
ERROR_ADVICE: dict[str, str] = {
    "create_customer_ticket": "I couldn't file the ticket: {detail}. Please try again in a moment.",
    "analyze_receipt_image": (
        "I couldn't read that receipt: {detail}. Please send a clear, well-lit photo of the whole "
        "receipt (JPEG or PNG), or type the date, the items and the total."
    ),
    "search_help_center": (
        "I couldn't search the help centre just now ({detail}). I can file a ticket so a person answers you instead."
    ),
    "lookup_order": (
        "I couldn't find that order: {detail}. Please check the order number in the app under Orders and send it again."
    ),
    "list_recent_orders": (
        "I couldn't look up your recent orders: {detail}. If you have the order number, send it and I'll look it up."
    ),
    "request_refund": (
        "I couldn't request that refund: {detail}. If you think that's wrong, I can file a ticket for a person to review it."
    ),
    "escalate_to_human": (
        "I couldn't reach a person just now: {detail}. I can file a ticket instead so the team gets back to you."
    ),
}
DEFAULT_ERROR_ADVICE = (
    "Something went wrong: {detail}. Please try again, or ask me to file a ticket."
)


_CRASHED = re.compile(r"^\w+ failed \(\w+: ")


def explain_error(tool: str, result: str) -> str:
    """A tool's ``Error: …`` text in plain words, with what the customer can do next."""
    detail = result.lstrip().removeprefix(ERROR_PREFIX).strip()
    detail = re.sub(r"\s*Tell the customer and offer a ticket\.?$", "", detail).rstrip(" .")
    detail = re.split(r"(?<=[.!?])\s+(?=[A-Z])", detail, maxsplit=1)[0].rstrip(" .")  # the fact
    if _CRASHED.match(detail):  # a bug's exception text means nothing to a customer
        detail = "our system had an unexpected problem"
    detail = detail[:1].lower() + detail[1:] if detail[:2].istitle() else detail
    return ERROR_ADVICE.get(tool, DEFAULT_ERROR_ADVICE).format(detail=detail or "no reason given")


def render_result(tool: str, arguments: dict[str, Any], result: str) -> str:
    """A short reply for one tool result."""
    if is_error_result(result):
        return explain_error(tool, result)
    renderer = RENDERERS.get(tool)
    return renderer(arguments, result) if renderer else _quote(result)
