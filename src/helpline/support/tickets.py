"""The ticket tool: ``create_customer_ticket(name, issue)``, backed by the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from helpline.tools import ToolContext, tool

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Issue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=4000)]


@tool(activity="Creating a ticket", done="Ticket created")
def create_customer_ticket(name: Name, issue: Issue, context: ToolContext) -> str:
    """Create a support ticket so a person on the support team follows up.

    Only call this once you know the customer's name and what the problem is.

    Args:
        name: The customer's name, as they gave it.
        issue: A short description of the problem, in the customer's own terms.
    """
    ticket, _ = context.store.tickets.create(
        name,
        issue,
        conversation_id=context.conversation_id,
        tool_call_id=context.tool_call_id,
    )
    return (
        f"Ticket #{ticket.id} created for {ticket.name} (status: {ticket.status}). "
        f"Issue: {ticket.issue}"
    )
