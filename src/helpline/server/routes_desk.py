"""The desk's API (an agent's key; the admin key reads but does not decide money): refunds
waiting for approval, approving and rejecting them, and the audit log.

A decision runs on a worker thread, not the event loop: telling the customer may wait for the
assistant's answer in progress to end, and that answer runs on the loop."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from helpline.desk import Decision, DeskError
from helpline.money import format_money
from helpline.server.desk_auth import desk_agent, desk_of, refused
from helpline.server.state import ServerState, limit_client, server_state
from helpline.store import ApprovalInfo, AuditEntry
from helpline.store.agents import OPERATOR

router = APIRouter(prefix="/api", tags=["desk"], dependencies=[Depends(limit_client)])
State = Annotated[ServerState, Depends(server_state)]
Agent = Annotated[str, Depends(desk_agent)]
ApprovalId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The approval's number.")]
ConversationFilter = Annotated[
    str | None,
    Query(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Only this conversation's."),
]


class RefundOut(BaseModel):
    item: str
    quantity: int
    amount_cents: int
    reason: str


class ApprovalOut(BaseModel):
    id: int
    conversation_id: str | None
    ticket_id: int | None
    order_id: str
    currency: str
    amount_cents: int
    amount: str
    """The amount as customers read it: ``€24.50``, or ``¥2,450`` in a currency without cents."""
    refunds: list[RefundOut]
    rules: list[str]
    """Why it waits: ``over_limit``, ``second_refund_on_order``, ``customer_not_verified``."""
    why: str
    status: str
    """``pending``, ``approving``, ``approved``, ``rejected`` or ``failed``."""
    decided_by: str | None
    decision_note: str | None
    decided_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, approval: ApprovalInfo) -> ApprovalOut:
        fields = asdict(approval)
        fields["refunds"] = [
            RefundOut(
                item=r.item_name, quantity=r.quantity, amount_cents=r.amount_cents, reason=r.reason
            )
            for r in approval.refunds
        ]
        fields["amount"] = format_money(approval.amount_cents, approval.currency)
        return cls.model_validate({k: v for k, v in fields.items() if k in cls.model_fields})


class ApprovalList(BaseModel):
    approvals: list[ApprovalOut]


class DecisionOut(BaseModel):
    approval: ApprovalOut
    customer_told: bool
    """Whether the customer was told in their chat (not when the conversation was deleted)."""

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        return cls(approval=ApprovalOut.of(decision.approval), customer_told=decision.customer_told)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="Why; the customer is told.")


class AuditEntryOut(BaseModel):
    id: int
    agent: str
    action: str
    conversation_id: str | None
    ticket_id: int | None
    approval_id: int | None
    detail: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(**asdict(entry))


class AuditList(BaseModel):
    entries: list[AuditEntryOut]


class Me(BaseModel):
    name: str
    operator: bool
    """True for the admin key: it works every ticket, but money is decided by named agents."""


@router.get("/agents/me", response_model=Me)
async def who_am_i(agent: Agent) -> Me:
    """Who this key signs in as."""
    return Me(name=agent, operator=agent == OPERATOR)


@router.get("/approvals", response_model=ApprovalList)
async def list_approvals(
    state: State,
    _agent: Agent,
    status: Annotated[
        Literal["pending", "approving", "approved", "rejected", "failed"] | None,
        Query(description="Only approvals in this status (pending ones come oldest first)."),
    ] = None,
    conversation_id: ConversationFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ApprovalList:
    """Refunds waiting for a person, and those decided, newest first."""
    store = state.assistant.store
    found = await store.call(
        lambda: store.approvals.find(status=status, conversation_id=conversation_id, limit=limit)
    )
    return ApprovalList(approvals=[ApprovalOut.of(a) for a in found])


@router.post("/approvals/{approval_id}/approve", response_model=DecisionOut)
async def approve(approval_id: ApprovalId, state: State, agent: Agent) -> DecisionOut:
    """Record the refund and tell the customer in their chat; 409 if it was decided already."""
    desk = desk_of(state)
    try:
        decision = await anyio.to_thread.run_sync(desk.approve, agent, approval_id)
    except DeskError as exc:
        raise refused(exc) from exc
    return DecisionOut.of(decision)


@router.post("/approvals/{approval_id}/reject", response_model=DecisionOut)
async def reject(
    approval_id: ApprovalId, body: RejectIn, state: State, agent: Agent
) -> DecisionOut:
    """Refuse the refund and tell the customer why; 409 if it was decided already."""
    desk = desk_of(state)
    try:
        decision = await anyio.to_thread.run_sync(desk.reject, agent, approval_id, body.reason)
    except DeskError as exc:
        raise refused(exc) from exc
    return DecisionOut.of(decision)


@router.get("/audit", response_model=AuditList)
async def audit_log(
    state: State,
    _agent: Agent,
    conversation_id: ConversationFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditList:
    """What agents did, who and when, oldest first (the latest ``limit`` entries)."""
    store = state.assistant.store
    entries = await store.call(
        lambda: store.audit.find(conversation_id=conversation_id, limit=limit)
    )
    return AuditList(entries=[AuditEntryOut.of(e) for e in entries])
