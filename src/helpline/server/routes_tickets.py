"""Agents' API (admin key only): list tickets, read one with its conversation, change its status."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from helpline.server.auth import require_admin
from helpline.server.errors import ApiError
from helpline.server.state import (
    ServerState,
    limit_client,
    limiting_failed_auth,
    server_state,
    state_of,
)
from helpline.store import TicketInfo

TicketStatus = Literal["open", "in_progress", "waiting_on_customer", "resolved", "closed"]


async def _admin(request: Request) -> None:
    with limiting_failed_auth(request):
        require_admin(request, state_of(request).settings.admin_key)


router = APIRouter(
    prefix="/api/tickets", tags=["tickets"], dependencies=[Depends(limit_client), Depends(_admin)]
)
State = Annotated[ServerState, Depends(server_state)]
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
async def update_ticket(ticket_id: TicketId, patch: TicketPatch, state: State) -> TicketOut:
    """Change a ticket's status."""
    _check_range(ticket_id)
    ticket = await state.assistant.store.call(
        state.assistant.store.tickets.set_status, ticket_id, patch.status
    )
    if ticket is None:
        raise _not_found(ticket_id)
    return TicketOut.of(ticket)
