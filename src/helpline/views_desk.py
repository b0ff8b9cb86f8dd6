"""The desk's lists for people: approvals and the audit log (coloured only on a terminal)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from helpline.money import format_money
from helpline.store import ApprovalInfo, AuditEntry


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def print_approvals(approvals: Sequence[ApprovalInfo], status: str) -> None:
    console = _console()
    if not approvals:
        console.print("Nothing waits for approval." if status == "pending" else "No approvals.")
        return
    table = Table("#", "status", "order", "amount", "items", "why", "decided by", box=None)
    for a in approvals:
        table.add_row(
            str(a.id),
            a.status,
            a.order_id,
            format_money(a.amount_cents, a.currency),
            ", ".join(a.items),
            a.why,
            a.decided_by or "",
        )
    console.print(table)


def describe(entry: AuditEntry) -> str:
    """One entry in words, e.g. ``rejected approval #3: not eligible``."""
    detail = entry.detail
    match entry.action:
        case "reply":
            return "replied in the chat"
        case "take_over":
            return "took the chat over"
        case "hand_back":
            return "handed the chat back to the assistant"
        case "ticket_status":
            return f"set ticket #{entry.ticket_id} to {detail.get('status')}"
        case "delete_conversation":
            return "deleted the conversation"
        case "approve":
            outcome = detail.get("outcome")
            if outcome == "approved":
                return f"approved refund #{entry.approval_id} on order {detail.get('order_id')}"
            return f"approved refund #{entry.approval_id}, not paid: {detail.get('problem')}"
        case "reject":
            return f"rejected refund #{entry.approval_id}: {detail.get('reason')}"
    return entry.action


def print_audit(entries: Sequence[AuditEntry]) -> None:
    console = _console()
    if not entries:
        console.print("Nothing in the audit log yet.")
        return
    table = Table("when", "agent", "conversation", "what", box=None)
    for e in entries:
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.agent, e.conversation_id or "", describe(e)
        )
    console.print(table)
