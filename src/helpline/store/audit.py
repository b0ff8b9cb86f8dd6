"""The audit log: every action an agent takes on a conversation, a ticket or an approval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from helpline.store.tables import StoredAuditEntry, detached

AUDITED_ACTIONS = (
    "reply",
    "take_over",
    "hand_back",
    "ticket_status",
    "delete_conversation",
    "approve",
    "reject",
)


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action: who, what, on which conversation, ticket or approval, and when."""

    id: int
    agent: str
    action: str
    conversation_id: str | None
    ticket_id: int | None
    approval_id: int | None
    detail: dict[str, Any]
    created_at: datetime


def audit_row(
    agent: str,
    action: str,
    *,
    conversation_id: str | None = None,
    ticket_id: int | None = None,
    approval_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> StoredAuditEntry:
    """An entry to add in the caller's own transaction, so the action and its record are one."""
    if action not in AUDITED_ACTIONS:
        raise ValueError(f"unknown audited action {action!r}")
    return StoredAuditEntry(
        agent=agent,
        action=action,
        conversation_id=conversation_id,
        ticket_id=ticket_id,
        approval_id=approval_id,
        detail=detail or {},
    )


class AuditLog:
    """Repository for the audit log (entries are only ever added)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, agent: str, action: str, **fields: Any) -> AuditEntry:
        """Add one entry; ``fields`` as :func:`audit_row` takes them."""
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            row = audit_row(agent, action, **fields)
            session.add(row)
        return detached(AuditEntry, row)

    def find(self, conversation_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The latest entries (for one conversation, if given), oldest first."""
        query = select(StoredAuditEntry).order_by(StoredAuditEntry.id.desc()).limit(limit)
        if conversation_id is not None:
            query = query.where(StoredAuditEntry.conversation_id == conversation_id)
        with Session(self._engine) as session:
            rows = list(session.scalars(query))
        return [detached(AuditEntry, row) for row in reversed(rows)]
