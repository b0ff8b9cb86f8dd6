"""Stand-ins for the support tools: the names and arguments the model sees, doing nothing.

The offline model decides from tool names and arguments alone, so these drive it at the model
level (tests and the offline benchmark) without a store or a help centre behind them.
"""

from __future__ import annotations

from typing import Any

from helpline.tools import tool


@tool
def create_customer_ticket(name: str, issue: str) -> str:
    """Create a support ticket."""
    return ""


@tool
def analyze_receipt_image(image_url: str) -> str:
    """Read a receipt photo."""
    return ""


@tool
def search_help_center(query: str) -> str:
    """Search the help centre."""
    return ""


@tool
def lookup_order(order_id: str, email: str) -> str:
    """Look up one order."""
    return ""


@tool
def list_recent_orders(email: str) -> str:
    """List a customer's recent orders."""
    return ""


@tool
def request_refund(order_id: str, email: str, items: list[str], reason: str) -> str:
    """Refund items of an order."""
    return ""


@tool
def escalate_to_human(reason: str) -> str:
    """Hand the conversation to a person."""
    return ""


TOOLS: dict[str, dict[str, Any]] = {
    t.name: t.schema()
    for t in (
        create_customer_ticket,
        analyze_receipt_image,
        search_help_center,
        lookup_order,
        list_recent_orders,
        request_refund,
        escalate_to_human,
    )
}
"""Each stub's schema by tool name, as a model receives it."""
