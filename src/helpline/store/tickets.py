"""Support tickets filed by the assistant and worked by agents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpline.store.db import locked_row
from helpline.store.tables import Conversation, Ticket, detached, utcnow

TICKET_STATUSES = ("open", "in_progress", "waiting_on_customer", "resolved", "closed")
OPEN_TICKET_STATUSES = TICKET_STATUSES[:3]
"""Statuses of tickets someone still has to work on."""


class TicketLimitReached(Exception):
    """The conversation has filed as many tickets as one conversation may."""


@dataclass(frozen=True)
class TicketInfo:
    """A ticket, detached from the database session."""

    id: int
    conversation_id: str | None
    name: str
    issue: str
    category: str
    amount_cents: int | None
    status: str
    created_at: datetime
    updated_at: datetime


class Tickets:
    """Repository for tickets."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        name: str,
        issue: str,
        *,
        conversation_id: str | None = None,
        tool_call_id: str | None = None,
        category: str = "general",
        amount_cents: int | None = None,
        limit: int | None = None,
    ) -> tuple[TicketInfo, bool]:
        """File a ticket; returns it and whether it is new.

        With ``limit``, a conversation that has filed that many tickets files no more
        (:class:`TicketLimitReached`); the count and the new ticket are atomic.

        At most one ticket exists per tool call id in a conversation, so a retried turn never
        files twice (another conversation's call with the same id is another call).
        """
        if tool_call_id is not None:
            existing = self.by_tool_call(conversation_id, tool_call_id)
            if existing is not None:
                return existing, False
        try:
            with Session(self._engine) as session, session.begin():
                if limit is not None and conversation_id is not None:
                    self._check_limit(session, conversation_id, limit)
                row = Ticket(
                    name=name,
                    issue=issue,
                    conversation_id=conversation_id,
                    tool_call_id=tool_call_id,
                    category=category,
                    amount_cents=amount_cents,
                )
                session.add(row)
                session.flush()
                return detached(TicketInfo, row), True
        except IntegrityError:
            existing = self.by_tool_call(conversation_id, tool_call_id) if tool_call_id else None
            if existing is None:
                raise
            return existing, False  # a concurrent retry of the same call won the race

    @staticmethod
    def _check_limit(session: Session, conversation_id: str, limit: int) -> None:
        locked_row(session, select(Conversation.id).where(Conversation.id == conversation_id))
        filed = session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.conversation_id == conversation_id)
        )
        if (filed or 0) >= limit:
            raise TicketLimitReached(
                f"this conversation has filed {filed} tickets, the most one conversation may file"
            )

    def by_tool_call(self, conversation_id: str | None, tool_call_id: str) -> TicketInfo | None:
        """The ticket this conversation's tool call filed, if it filed one."""
        with Session(self._engine) as session:
            in_conversation = (
                Ticket.conversation_id.is_(None)
                if conversation_id is None
                else Ticket.conversation_id == conversation_id
            )
            row = session.scalar(
                select(Ticket).where(in_conversation, Ticket.tool_call_id == tool_call_id)
            )
            return detached(TicketInfo, row) if row else None

    def get(self, ticket_id: int) -> TicketInfo | None:
        with Session(self._engine) as session:
            row = session.get(Ticket, ticket_id)
            return detached(TicketInfo, row) if row else None

    def find(
        self, status: str | None = None, conversation_id: str | None = None, limit: int = 200
    ) -> list[TicketInfo]:
        with Session(self._engine) as session:
            query = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
            if status:
                query = query.where(Ticket.status == status)
            if conversation_id:
                query = query.where(Ticket.conversation_id == conversation_id)
            return [detached(TicketInfo, row) for row in session.scalars(query)]

    def revise_amount(self, ticket_id: int, amount_cents: int, issue: str) -> None:
        """Correct a refund ticket to the amount actually recorded (and its issue to match)."""
        with Session(self._engine) as session, session.begin():
            row = session.get(Ticket, ticket_id)
            if row is not None:
                row.amount_cents, row.issue, row.updated_at = amount_cents, issue, utcnow()

    def set_status(self, ticket_id: int, status: str) -> TicketInfo | None:
        """Change a ticket's status; ``None`` if there is no such ticket."""
        if status not in TICKET_STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {', '.join(TICKET_STATUSES)}")
        with Session(self._engine) as session, session.begin():
            row = session.get(Ticket, ticket_id)
            if row is None:
                return None
            row.status = status
            row.updated_at = utcnow()
            session.flush()
            return detached(TicketInfo, row)
