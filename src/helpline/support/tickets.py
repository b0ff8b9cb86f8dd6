"""The ticket tool: ``create_customer_ticket(name, issue)``, backed by the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from helpline.store import TicketLimitReached
from helpline.support.profile import Profile, Settings
from helpline.tools import Tool, ToolContext, ToolError, tool

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Issue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000)]


def too_many_tickets(exc: TicketLimitReached) -> ToolError:
    """What the model reads when the conversation may file no more tickets."""
    return ToolError(
        f"No ticket was filed: {exc}. Tell the customer the tickets already filed stand and "
        "that the support team follows up on them; do not try to file another."
    )


def ticket_tool(settings: Settings) -> Tool:
    """``create_customer_ticket``, filing at most ``settings.tickets_per_conversation``."""
    limit = settings.tickets_per_conversation

    @tool(activity="Creating a ticket", done="Ticket created")
    def create_customer_ticket(name: Name, issue: Issue, context: ToolContext) -> str:
        """Create a support ticket so a person on the support team follows up.

        Only call this once you know the customer's name and what the problem is.

        Args:
            name: The customer's name, as they gave it.
            issue: A short description of the problem, in the customer's own terms.
        """
        try:
            ticket, _ = context.store.tickets.create(
                name,
                issue,
                conversation_id=context.conversation_id,
                tool_call_id=context.tool_call_id,
                limit=limit,
            )
        except TicketLimitReached as exc:
            raise too_many_tickets(exc) from exc
        return (
            f"Ticket #{ticket.id} created for {ticket.name} (status: {ticket.status}). "
            f"Issue: {ticket.issue}"
        )

    return create_customer_ticket


def ticket_tools(profile: Profile) -> list[Tool]:
    """The ticket tool with ``profile``'s cap on tickets per conversation."""
    return [ticket_tool(profile.settings)]


create_customer_ticket = ticket_tool(Settings())
"""The ticket tool with the default policy, for assistants built without a profile."""
