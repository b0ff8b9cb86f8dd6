"""Refunds waiting for a person's decision, and the decisions, made once even when raced.

A decision is taken by one conditional ``UPDATE`` (``pending`` to ``approving`` or
``rejected``): of two agents clicking at once, exactly one changes the row, on every database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Update, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpline.store.audit import audit_row
from helpline.store.conversation_events import APPROVAL, record_event
from helpline.store.orders import Refund
from helpline.store.tables import StoredApproval, utcnow

PENDING = "pending"
APPROVING = "approving"
"""Claimed by an agent whose approval is being recorded right now."""
APPROVED = "approved"
REJECTED = "rejected"
FAILED = "failed"
"""Approved, but the order system refused to record it (e.g. refunded meanwhile)."""
APPROVAL_STATUSES = (PENDING, APPROVING, APPROVED, REJECTED, FAILED)
FORGOTTEN_REASON = "(The conversation was deleted at the customer's request.)"


@dataclass(frozen=True)
class ApprovalInfo:
    """A refund waiting for approval, or decided, detached from the database session."""

    id: int
    conversation_id: str | None
    request_id: str | None
    ticket_id: int | None
    order_id: str
    currency: str
    amount_cents: int
    refunds: tuple[Refund, ...]
    rules: tuple[str, ...]
    """Which rules made it wait, e.g. ``("over_limit", "customer_not_verified")``."""
    why: str
    """The same in words, for agents and customers."""
    status: str
    decided_by: str | None
    decision_note: str | None
    claimed_at: datetime | None
    decided_at: datetime | None
    created_at: datetime

    @property
    def items(self) -> list[str]:
        return [refund.item_name for refund in self.refunds]


def _info(row: StoredApproval) -> ApprovalInfo:
    return ApprovalInfo(
        id=row.id,
        conversation_id=row.conversation_id,
        request_id=row.request_id,
        ticket_id=row.ticket_id,
        order_id=row.order_id,
        currency=row.currency,
        amount_cents=row.amount_cents,
        refunds=tuple(Refund(**item) for item in row.refunds["items"]),
        rules=tuple(row.reasons["rules"]),
        why=row.reasons["text"],
        status=row.status,
        decided_by=row.decided_by,
        decision_note=row.decision_note,
        claimed_at=row.claimed_at,
        decided_at=row.decided_at,
        created_at=row.created_at,
    )


def _refund_item(refund: Refund) -> dict[str, Any]:
    return {
        "item_name": refund.item_name,
        "quantity": refund.quantity,
        "amount_cents": refund.amount_cents,
        "reason": refund.reason,
        "request_id": refund.request_id,
        "ticket_id": refund.ticket_id,
    }


class Approvals:
    """Repository for approvals."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def queue(
        self,
        *,
        conversation_id: str | None,
        request_id: str | None,
        ticket_id: int | None,
        order_id: str,
        currency: str,
        refunds: Sequence[Refund],
        rules: Sequence[str],
        why: str,
    ) -> tuple[ApprovalInfo, bool]:
        """Queue refunds for a person; returns the approval and whether it is new (a retried
        request finds the one it queued before)."""
        if request_id is not None and conversation_id is not None:
            earlier = self.for_request(conversation_id, request_id)
            if earlier is not None:
                return earlier, False
        row = StoredApproval(
            conversation_id=conversation_id,
            request_id=request_id,
            ticket_id=ticket_id,
            order_id=order_id,
            currency=currency,
            amount_cents=sum(refund.amount_cents for refund in refunds),
            refunds={"items": [_refund_item(refund) for refund in refunds]},
            reasons={"rules": list(rules), "text": why},
            status=PENDING,
        )
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                session.add(row)
                session.flush()
                _announce(session, row)
        except IntegrityError:
            if request_id is None or conversation_id is None:
                raise
            raced = self.for_request(conversation_id, request_id)  # a concurrent retry won
            if raced is None:
                raise
            return raced, False
        return _info(row), True

    def get(self, approval_id: int) -> ApprovalInfo | None:
        with Session(self._engine) as session:
            row = session.get(StoredApproval, approval_id)
            return _info(row) if row else None

    def for_request(self, conversation_id: str, request_id: str) -> ApprovalInfo | None:
        """The approval a request (tool call) of this conversation queued, if any."""
        with Session(self._engine) as session:
            row = session.scalar(
                select(StoredApproval).where(
                    StoredApproval.conversation_id == conversation_id,
                    StoredApproval.request_id == request_id,
                )
            )
            return _info(row) if row else None

    def find(
        self,
        *,
        status: str | None = None,
        conversation_id: str | None = None,
        order_id: str | None = None,
        limit: int = 200,
    ) -> list[ApprovalInfo]:
        """Approvals, newest first; those still pending oldest first (the queue's order)."""
        if status is not None and status not in APPROVAL_STATUSES:
            raise ValueError(
                f"unknown approval status {status!r}; use one of {', '.join(APPROVAL_STATUSES)}"
            )
        order = StoredApproval.id.asc() if status == PENDING else StoredApproval.id.desc()
        query = select(StoredApproval).order_by(order).limit(limit)
        if status is not None:
            query = query.where(StoredApproval.status == status)
        if conversation_id is not None:
            query = query.where(StoredApproval.conversation_id == conversation_id)
        if order_id is not None:
            query = query.where(StoredApproval.order_id == order_id)
        with Session(self._engine) as session:
            return [_info(row) for row in session.scalars(query)]

    def claim(self, approval_id: int, agent: str, stale_before: datetime) -> ApprovalInfo | None:
        """Take a pending approval (or one whose recording was abandoned before
        ``stale_before``) for ``agent`` to record; ``None`` if someone else decided it."""
        now = utcnow()
        with Session(self._engine) as session, session.begin():
            taken = session.execute(
                update(StoredApproval)
                .where(
                    StoredApproval.id == approval_id,
                    or_(
                        StoredApproval.status == PENDING,
                        (StoredApproval.status == APPROVING)
                        & (StoredApproval.claimed_at < stale_before),
                    ),
                )
                .values(status=APPROVING, decided_by=agent, claimed_at=now)
                .returning(StoredApproval.id)
            ).scalar_one_or_none()
            if taken is None:
                return None
            row = session.get(StoredApproval, approval_id)
            assert row is not None
            return _info(row)

    def finish(
        self,
        approval_id: int,
        agent: str,
        status: str,
        *,
        note: str | None = None,
        amount_cents: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> ApprovalInfo:
        """Record how ``agent``'s claimed approval ended (approved or failed), with its audit
        entry, in one transaction."""
        values: dict[str, Any] = {"status": status, "decision_note": note, "decided_at": utcnow()}
        if amount_cents is not None:
            values["amount_cents"] = amount_cents
        with Session(self._engine) as session, session.begin():
            session.execute(_claimed(approval_id, agent).values(**values))
            row = session.get(StoredApproval, approval_id)
            assert row is not None
            session.add(_audit(row, agent, "approve", {"outcome": status, **(detail or {})}))
            session.flush()
            _announce(session, row)
            return _info(row)

    def forget_customer_words(self, conversation_id: str) -> None:
        """Before a conversation is deleted: its approvals keep the amounts and items (refunds
        are business records) but lose the reasons the customer gave."""
        with Session(self._engine) as session, session.begin():
            rows = session.scalars(
                select(StoredApproval).where(StoredApproval.conversation_id == conversation_id)
            )
            for row in rows:
                items = [{**item, "reason": FORGOTTEN_REASON} for item in row.refunds["items"]]
                row.refunds = {"items": items}

    def release(self, approval_id: int, agent: str) -> None:
        """Put ``agent``'s claim back in the queue (recording it broke; nothing was paid)."""
        with Session(self._engine) as session, session.begin():
            session.execute(
                _claimed(approval_id, agent).values(
                    status=PENDING, decided_by=None, claimed_at=None
                )
            )

    def reject(self, approval_id: int, agent: str, reason: str) -> ApprovalInfo | None:
        """Reject a pending approval, with its audit entry; ``None`` if it was not pending."""
        with Session(self._engine) as session, session.begin():
            changed = session.execute(
                update(StoredApproval)
                .where(StoredApproval.id == approval_id, StoredApproval.status == PENDING)
                .values(
                    status=REJECTED, decided_by=agent, decision_note=reason, decided_at=utcnow()
                )
                .returning(StoredApproval.id)
            ).scalar_one_or_none()
            if changed is None:
                return None
            row = session.get(StoredApproval, approval_id)
            assert row is not None
            session.add(_audit(row, agent, "reject", {"reason": reason}))
            session.flush()
            _announce(session, row)
            return _info(row)


def _claimed(approval_id: int, agent: str) -> Update:
    """An ``UPDATE`` of the approval while ``agent``'s claim on it stands."""
    return update(StoredApproval).where(
        StoredApproval.id == approval_id,
        StoredApproval.status == APPROVING,
        StoredApproval.decided_by == agent,
    )


def _announce(session: Session, row: StoredApproval) -> None:
    """Tell open pages the approval's state (the transaction's last statement)."""
    if row.conversation_id is None:
        return
    data = {
        "approval_id": row.id,
        "status": row.status,
        "order_id": row.order_id,
        "amount_cents": row.amount_cents,
        "currency": row.currency,
        "decided_by": row.decided_by,
    }
    record_event(session.connection(), row.conversation_id, APPROVAL, data)


def _audit(row: StoredApproval, agent: str, action: str, detail: dict[str, Any]) -> Any:
    return audit_row(
        agent,
        action,
        conversation_id=row.conversation_id,
        ticket_id=row.ticket_id,
        approval_id=row.id,
        detail={"order_id": row.order_id, "amount_cents": row.amount_cents, **detail},
    )
