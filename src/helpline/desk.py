"""The support desk: what an agent does — reply, take over, hand back, change a status, delete
a conversation, approve or reject a refund — in one place for every surface (the command line,
the HTTP API, the agents' page), each action written to the audit log with the agent's name.

Approving records the refund through the order system, whose ``record_refunds`` checks the
rules again under the order's lock, and tells the customer in their chat; nothing is paid
twice, because only one agent can claim a pending approval.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from helpline.store import (
    ACTIVE,
    TICKET_STATUSES,
    WAITING_FOR_AGENT,
    AlreadyRefunded,
    ApprovalInfo,
    ConversationGone,
    ConversationInfo,
    NothingLeftToRefund,
    Refund,
    Store,
    TicketInfo,
)
from helpline.store.agents import OPERATOR
from helpline.store.approvals import APPROVED, FAILED
from helpline.store.tables import utcnow
from helpline.support.approvals import approved_note, failed_note, rejected_note
from helpline.support.orders import OrderSystem

CLAIM_ABANDONED_AFTER = timedelta(minutes=2)
"""An approval claimed this long ago and never recorded (its agent's process died) may be
approved again; the order system then recognises refunds the first attempt recorded."""
MAX_REASON_CHARS = 2000


class DeskError(Exception):
    """An action the desk refused; the message says why and what to do instead."""

    status = 400


class NotFound(DeskError):
    status = 404


class Conflict(DeskError):
    """The action clashes with the current state (decided already, the assistant answering)."""

    status = 409


class NeedsNamedAgent(DeskError):
    status = 403


@dataclass(frozen=True)
class Decision:
    """An approval as decided, and whether the customer could be told in their chat."""

    approval: ApprovalInfo
    customer_told: bool


class Desk:
    """Agent actions over ``store``; refunds are recorded in ``orders`` (default: the store's)."""

    def __init__(
        self, store: Store, orders: OrderSystem | None = None, *, notice_wait: float = 20.0
    ) -> None:
        self.store = store
        self.orders: OrderSystem = orders if orders is not None else store.orders
        self.notice_wait = notice_wait
        """How long to wait for the assistant to finish its answer before telling the customer."""

    # The conversation

    def reply(self, agent: str, conversation_id: str, text: str) -> int:
        """Write to the customer in their chat; the team has the conversation from then on."""
        text = text.strip()
        if not text:
            raise DeskError("The reply is empty. Write what to tell the customer.")
        before = self._conversation(conversation_id)
        message_id = self.store.conversations.add_agent_reply(conversation_id, text)
        if message_id is None:
            raise Conflict(
                "The assistant is answering the customer right now. Send the reply again in a moment."
            )
        if before.status != WAITING_FOR_AGENT:  # the reply took the chat over
            status = {"status": WAITING_FOR_AGENT}
            self.store.audit.record(
                agent, "take_over", conversation_id=conversation_id, detail=status
            )
        self.store.audit.record(
            agent, "reply", conversation_id=conversation_id, detail={"message_id": message_id}
        )
        return message_id

    def take_over(self, agent: str, conversation_id: str) -> str:
        """The team has the conversation: the assistant stays quiet in it."""
        return self._set_status(agent, conversation_id, WAITING_FOR_AGENT, "take_over")

    def hand_back(self, agent: str, conversation_id: str) -> str:
        """The assistant answers the customer again."""
        return self._set_status(agent, conversation_id, ACTIVE, "hand_back")

    def set_conversation_status(self, agent: str, conversation_id: str, status: str) -> str:
        if status == ACTIVE:
            return self.hand_back(agent, conversation_id)
        if status == WAITING_FOR_AGENT:
            return self.take_over(agent, conversation_id)
        raise DeskError(f"Unknown status {status!r}: use {ACTIVE} or {WAITING_FOR_AGENT}.")

    def delete_conversation(self, agent: str, conversation_id: str) -> None:
        """Forget a conversation at the customer's request (tickets and refunds stay, without
        the customer's words)."""
        self.store.approvals.forget_customer_words(conversation_id)
        if not self.store.conversations.delete(conversation_id):
            raise NotFound(f"There is no conversation {conversation_id!r}. Check the id.")
        self.store.audit.record(agent, "delete_conversation", conversation_id=conversation_id)

    def set_ticket_status(self, agent: str, ticket_id: int, status: str) -> TicketInfo:
        if status not in TICKET_STATUSES:
            raise DeskError(f"unknown status {status!r}; use one of {', '.join(TICKET_STATUSES)}.")
        ticket = self.store.tickets.set_status(ticket_id, status)
        if ticket is None:
            raise NotFound(
                f"There is no ticket #{ticket_id}. Check the number in the tickets list."
            )
        self.store.audit.record(
            agent,
            "ticket_status",
            conversation_id=ticket.conversation_id,
            ticket_id=ticket_id,
            detail={"status": status},
        )
        return ticket

    # Approvals

    def approve(self, agent: str, approval_id: int) -> Decision:
        """Record the refund and tell the customer; :class:`Conflict` if it was decided already."""
        _named(agent)
        claimed = self.store.approvals.claim(approval_id, agent, utcnow() - CLAIM_ABANDONED_AFTER)
        if claimed is None:
            raise self._not_pending(approval_id)
        try:
            recorded = list(self.orders.record_refunds(claimed.order_id, claimed.refunds))
        except (AlreadyRefunded, NothingLeftToRefund, LookupError) as exc:
            recorded = self._recorded_before(claimed)
            if not recorded:
                return self._not_recorded(agent, claimed, _problem(claimed, exc))
        except BaseException:
            self.store.approvals.release(approval_id, agent)  # nothing paid: back in the queue
            raise
        total = sum(refund.amount_cents for refund in recorded)
        items = [{"name": r.item_name, "amount_cents": r.amount_cents} for r in recorded]
        approval = self.store.approvals.finish(
            approval_id, agent, APPROVED, amount_cents=total, detail={"items": items}
        )
        if claimed.ticket_id is not None:
            ticket = self.store.tickets.set_status(claimed.ticket_id, "resolved")
            if ticket is not None and total != claimed.amount_cents:  # trimmed to what was left
                self.store.tickets.revise_amount(ticket.id, total, ticket.issue)
        told = self._tell(claimed.conversation_id, approved_note(claimed, recorded))
        return Decision(approval, told)

    def reject(self, agent: str, approval_id: int, reason: str) -> Decision:
        """Refuse the refund and tell the customer why; nothing is paid."""
        _named(agent)
        reason = " ".join(reason.split())
        if not reason:
            raise DeskError("Say why the refund is rejected: the customer is told the reason.")
        if len(reason) > MAX_REASON_CHARS:
            raise DeskError(f"The reason is too long: keep it under {MAX_REASON_CHARS} characters.")
        if reason[-1] not in ".!?":
            reason += "."
        approval = self.store.approvals.reject(approval_id, agent, reason)
        if approval is None:
            raise self._not_pending(approval_id)
        if approval.ticket_id is not None:
            self.store.tickets.set_status(approval.ticket_id, "closed")
        return Decision(approval, self._tell(approval.conversation_id, rejected_note(approval)))

    # Helpers

    def _conversation(self, conversation_id: str) -> ConversationInfo:
        info = self.store.conversations.get(conversation_id)
        if info is None:
            raise NotFound(f"There is no conversation {conversation_id!r}. Check the id.")
        return info

    def _set_status(self, agent: str, conversation_id: str, status: str, action: str) -> str:
        self._conversation(conversation_id)
        self.store.conversations.set_status(conversation_id, status)
        self.store.audit.record(
            agent, action, conversation_id=conversation_id, detail={"status": status}
        )
        return status

    def _not_pending(self, approval_id: int) -> DeskError:
        current = self.store.approvals.get(approval_id)
        if current is None:
            return NotFound(
                f"There is no approval #{approval_id}. See the queue with `helpline approvals list`."
            )
        who = f" by {current.decided_by}" if current.decided_by else ""
        if current.status == "approving":
            return Conflict(f"Approval #{approval_id} is being approved{who} right now.")
        return Conflict(f"Approval #{approval_id} was {current.status}{who} already.")

    def _recorded_before(self, claimed: ApprovalInfo) -> list[Refund]:
        """The refunds an abandoned earlier attempt at this approval recorded, if all were."""
        order = self.orders.get(claimed.order_id)
        if order is None:
            return []
        mine = [
            r
            for r in order.refunds
            if r.ticket_id == claimed.ticket_id and r.request_id == claimed.request_id
        ]
        return mine if {r.item_name for r in mine} == set(claimed.items) else []

    def _not_recorded(self, agent: str, claimed: ApprovalInfo, problem: str) -> Decision:
        approval = self.store.approvals.finish(
            claimed.id, agent, FAILED, note=problem, detail={"problem": problem}
        )
        if claimed.ticket_id is not None:
            self.store.tickets.set_status(claimed.ticket_id, "closed")
        return Decision(
            approval, self._tell(claimed.conversation_id, failed_note(claimed, problem))
        )

    def _tell(self, conversation_id: str | None, text: str) -> bool:
        """Add the team's message to the chat, between the assistant's turns; False if the
        conversation is gone or stayed busy."""
        if conversation_id is None:
            return False
        deadline = time.monotonic() + self.notice_wait
        pause = 0.05
        while True:
            try:
                if self.store.notices.tell(conversation_id, text) is not None:
                    return True
            except ConversationGone:
                return False
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


def _named(agent: str) -> None:
    if agent == OPERATOR:
        raise NeedsNamedAgent(
            "Refunds are approved or rejected by a named agent, so the audit log says who: "
            "sign in with your own agent key (create one with `helpline agents add NAME`)."
        )


def _problem(approval: ApprovalInfo, exc: Exception) -> str:
    if isinstance(exc, AlreadyRefunded):
        items: Sequence[str] = exc.items or approval.items
        return f"{', '.join(items)} on order {approval.order_id} had been refunded already."
    if isinstance(exc, NothingLeftToRefund):
        return f"everything paid for order {approval.order_id} has been refunded already."
    return f"order {approval.order_id} can no longer be found."
