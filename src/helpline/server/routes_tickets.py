"""Agents' API (an agent's key or the admin key): list tickets, read one with its
conversation, change its status."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from helpline.desk import DeskError
from helpline.server.desk_auth import desk_agent, desk_of, refused
from helpline.server.errors import ApiError
from helpline.server.state import ServerState, limit_client, server_state
from helpline.store import TicketInfo

TicketStatus = Literal["open", "in_progress", "waiting_on_customer", "resolved", "closed"]


router = APIRouter(
    prefix="/api/tickets",
    tags=["tickets"],
    dependencies=[Depends(limit_client), Depends(desk_agent)],
)
State = Annotated[ServerState, Depends(server_state)]
Agent = Annotated[str, Depends(desk_agent)]
TicketId = Annotated[int, Path(description="The ticket's number.")]

_LARGEST_TICKET_ID = 2**31 - 1
"""Ticket ids are INTEGER columns (32 bits on PostgreSQL); a larger number names no ticket."""


# The store's ticket under the API's own schema name; its fields are declared once, there.
@dataclass(frozen=True)
class TicketOut(TicketInfo):
    """A support ticket the assistant filed."""

    @classmethod
    def of(cls, ticket: TicketInfo) -> TicketOut:
        return cls(**asdict(ticket))


class TicketList(BaseModel):
    tickets: list[TicketOut]


@dataclass(frozen=True)
class TicketDetail(TicketOut):
    """A ticket with the conversation the assistant filed it from."""

    messages: list[dict[str, Any]]
    """The conversation behind the ticket, in wire form (empty if there is none)."""
    conversation_status: str | None
    """``active`` (the assistant answers) or ``waiting_for_agent`` (a person has it)."""


class TicketPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: TicketStatus


def _not_found(ticket_id: int) -> ApiError:
    return ApiError(404, f"There is no ticket #{ticket_id}. Check the number in the tickets list.")


def _check_range(ticket_id: int) -> None:
    """A number no ticket can have is a 404 before the database, which would refuse it."""
    if not 1 <= ticket_id <= _LARGEST_TICKET_ID:
        raise _not_found(ticket_id)


@router.get("", response_model=TicketList)
async def list_tickets(
    state: State,
    status: Annotated[
        TicketStatus | None, Query(description="Only tickets in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> TicketList:
    """Tickets, newest first."""
    tickets = await state.assistant.store.call(
        lambda: state.assistant.store.tickets.find(status=status, limit=limit)
    )
    return TicketList(tickets=[TicketOut.of(t) for t in tickets])


@router.get("/{ticket_id}", response_model=TicketDetail)
async def get_ticket(ticket_id: TicketId, state: State) -> TicketDetail:
    """One ticket and the conversation the assistant filed it from."""
    _check_range(ticket_id)
    store = state.assistant.store
    ticket = await store.call(store.tickets.get, ticket_id)
    if ticket is None:
        raise _not_found(ticket_id)
    messages: list[dict[str, Any]] = []
    conversation = None
    if ticket.conversation_id:
        messages = await store.call(store.conversations.messages, ticket.conversation_id)
        conversation = await store.call(store.conversations.get, ticket.conversation_id)
    return TicketDetail(
        **asdict(ticket),
        messages=messages,
        conversation_status=conversation.status if conversation else None,
    )


@router.patch("/{ticket_id}", response_model=TicketOut)
async def update_ticket(
    ticket_id: TicketId, patch: TicketPatch, state: State, agent: Agent
) -> TicketOut:
    """Change a ticket's status (written to the audit log with the agent's name)."""
    _check_range(ticket_id)
    desk = desk_of(state)
    try:
        ticket = await state.assistant.store.call(
            desk.set_ticket_status, agent, ticket_id, patch.status
        )
    except DeskError as exc:
        raise refused(exc) from exc
    return TicketOut.of(ticket)
