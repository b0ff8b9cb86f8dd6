"""Handing a conversation to a person: the ``escalate_to_human`` tool, and the same handoff
when a customer asks for a person before the assistant starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import StringConstraints

from helpline.store import OPEN_TICKET_STATUSES, WAITING_FOR_AGENT, Store, TicketLimitReached
from helpline.store.tables import utcnow
from helpline.support.profile import Profile
from helpline.support.tickets import Name
from helpline.tools import Tool, ToolContext, tool

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]


@dataclass(frozen=True)
class Handoff:
    """A conversation handed to the team: its ticket, what the customer is told, and whether
    this request filed the ticket (not an earlier or a simultaneous one)."""

    ticket_id: int
    message: str
    filed: bool

    def result(self) -> dict[str, Any]:
        """What the model, or the customer, is told."""
        return {"status": WAITING_FOR_AGENT, "ticket_id": self.ticket_id, "message": self.message}


def hand_over(
    store: Store,
    profile: Profile,
    conversation_id: str,
    request_id: str,
    reason: str,
    name: str | None = None,
    now: datetime | None = None,
) -> Handoff:
    """Give the conversation to the support team (one open handoff ticket per conversation,
    filed once per ``request_id``) and say when a person will answer."""
    tickets = store.tickets
    earlier = tickets.find(conversation_id=conversation_id)
    handoff = next(
        (t for t in earlier if t.category == "handoff" and t.status in OPEN_TICKET_STATUSES),
        None,
    )
    filed = False
    if handoff is None:  # one open handoff ticket per conversation is enough
        known_name = name or next((t.name for t in earlier), "Unknown customer")
        try:
            handoff, filed = tickets.create(
                known_name,
                reason,
                conversation_id=conversation_id,
                tool_call_id=request_id,
                category="handoff",
                limit=profile.settings.tickets_per_conversation,
            )
        except TicketLimitReached:  # a person still takes over; the latest ticket is the reference
            handoff = earlier[0]
    store.conversations.set_status(conversation_id, WAITING_FOR_AGENT)
    hours, schedule = profile.settings.support_hours, profile.settings.hours
    when = f" Our agents work {hours}." if hours else ""
    if schedule is not None:
        when += " " + schedule.when_people_answer(now or utcnow())
    message = (
        f"A person from the {profile.name} support team will take over this "
        f"conversation and reply here.{when} Your reference is ticket #{handoff.id}."
    )
    return Handoff(handoff.id, message, filed)


def handoff_tools(profile: Profile) -> list[Tool]:
    """``escalate_to_human``, telling customers when ``profile``'s agents work."""

    @tool(activity="Passing this to our team", done="Passed to our team")
    def escalate_to_human(
        reason: Reason, context: ToolContext, name: Name | None = None
    ) -> dict[str, Any]:
        """Hand the conversation to a human support agent, who will reply in this conversation.

        Use it when the customer asks for a person, reports a food safety or allergy problem,
        is very upset, or the issue is still unsolved after two tries.

        Args:
            reason: One line for the agent: what the customer needs and what was tried.
            name: The customer's name, if they gave it.
        """
        signed_in = context.customer.name if context.customer else None
        return hand_over(
            context.store,
            profile,
            context.conversation_id,
            context.tool_call_id,
            reason,
            name or signed_in,
        ).result()

    return [escalate_to_human]
