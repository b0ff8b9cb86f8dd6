"""The product itself: the support persona and the tools a support desk needs."""

from __future__ import annotations

from helpline.support.tickets import create_customer_ticket
from helpline.tools import Tool


def support_tools() -> list[Tool]:
    """The tools the default support desk offers."""
    return [create_customer_ticket]


__all__ = ["create_customer_ticket", "support_tools"]
