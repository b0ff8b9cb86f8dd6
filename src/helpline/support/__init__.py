"""The product itself: the company's profile and the tools a support desk needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpline.support.profile import Profile, ProfileError, load_profile
from helpline.support.receipts import analyze_receipt_image, receipt_tools
from helpline.support.tickets import create_customer_ticket, ticket_tools
from helpline.tools import Tool

if TYPE_CHECKING:
    from helpline.support.orders import OrderSystem


def support_tools(profile: Profile, order_system: OrderSystem | None = None) -> list[Tool]:
    """The tools ``profile`` turns on, in the order it lists them.

    ``order_system`` plugs in the business's own orders (default: the orders tables).
    """
    from helpline.support.handoff import handoff_tools
    from helpline.support.knowledge import knowledge_tools
    from helpline.support.orders import order_tools

    available = {
        t.name: t
        for t in (
            *ticket_tools(profile),
            *receipt_tools(profile),
            *knowledge_tools(profile),
            *order_tools(profile, order_system),
            *handoff_tools(profile),
        )
    }
    if profile.tools is None:
        return list(available.values())
    unknown = [name for name in profile.tools if name not in available]
    if unknown:
        raise ProfileError(
            f"{profile.path / 'profile.toml'} turns on unknown tools: {', '.join(unknown)}. "
            f"Available: {', '.join(available)}."
        )
    return [available[name] for name in profile.tools]


__all__ = [
    "Profile",
    "ProfileError",
    "analyze_receipt_image",
    "create_customer_ticket",
    "load_profile",
    "support_tools",
]
