"""What one run of a scenario left behind: the transcript, the tool calls and the database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpline.store import Store
from helpline.store.orders import StoredOrder, StoredRefund, as_utc
from helpline.store.tables import StoredApproval, Ticket, TurnUsage
from helpline.tools import is_error_result


@dataclass(frozen=True)
class ToolCallRecord:
    name: str
    arguments: Any
    """The parsed JSON arguments (the raw text if they were not JSON)."""
    result: Any
    """The parsed JSON result (the raw text if it was not JSON; ``None`` if unanswered)."""
    failed: bool


@dataclass
class RunRecord:
    """One run: what the customer said, what came back, and the database at the end."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    customer_lines: list[str] = field(default_factory=list)
    status: str = ""
    tickets: list[dict[str, Any]] = field(default_factory=list)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    """The run could not finish (a model or engine failure)."""
    tokens: int = 0
    cost_usd: float = 0.0

    @property
    def replies(self) -> list[str]:
        """The text of every assistant message the customer saw."""
        return [
            m["content"]
            for m in self.messages
            if m.get("role") == "assistant" and isinstance(m.get("content"), str) and m["content"]
        ]

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        results = {
            m.get("tool_call_id"): m.get("content", "")
            for m in self.messages
            if m.get("role") == "tool"
        }
        calls = []
        for message in self.messages:
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                result = results.get(call.get("id"))
                calls.append(
                    ToolCallRecord(
                        name=function.get("name", ""),
                        arguments=_parsed(function.get("arguments", "")),
                        result=_parsed(result) if result is not None else None,
                        failed=result is not None and is_error_result(result),
                    )
                )
        return calls

    def transcript(self) -> list[str]:
        """The conversation as lines a person reads: who said what, and each tool call."""
        lines = []
        results = {m.get("tool_call_id"): m.get("content", "") for m in self.messages}
        for message in self.messages:
            role = message.get("role")
            content = message.get("content")
            if role == "user":
                lines.append(f"Customer: {_text(content)}")
            elif role == "assistant":
                who = "Agent" if message.get("name") == "agent" else "Assistant"
                if content:
                    lines.append(f"{who}: {content}")
                for call in message.get("tool_calls") or []:
                    function = call.get("function", {})
                    result = results.get(call.get("id"), "(no result)")
                    lines.append(
                        f"  tool {function.get('name')} {function.get('arguments', '')} "
                        f"-> {_short(result)}"
                    )
        if self.error:
            lines.append(f"(the run failed: {self.error})")
        return lines


def capture(store: Store, conversation_id: str, record: RunRecord) -> None:
    """Fill ``record`` with the conversation, what its model replies used and cost, and the
    database's tickets, refunds, approvals and orders."""
    record.messages = store.conversations.messages(conversation_id)
    info = store.conversations.get(conversation_id)
    record.status = info.status if info else "deleted"
    with Session(store.engine) as session:
        tokens, cost = session.execute(
            select(
                func.coalesce(func.sum(TurnUsage.prompt_tokens + TurnUsage.completion_tokens), 0),
                func.coalesce(func.sum(TurnUsage.cost_usd), 0),
            ).where(TurnUsage.conversation_id == conversation_id)
        ).one()
        record.tokens, record.cost_usd = int(tokens), float(cost or 0)
        record.tickets = [
            {
                "name": t.name,
                "issue": t.issue,
                "category": t.category,
                "amount_cents": t.amount_cents,
                "status": t.status,
            }
            for t in session.scalars(select(Ticket).order_by(Ticket.id))
        ]
        record.refunds = [
            {
                "order_id": r.order_id,
                "item_name": r.item_name,
                "quantity": r.quantity,
                "amount_cents": r.amount_cents,
                "created_at": as_utc(r.created_at),
            }
            for r in session.scalars(select(StoredRefund).order_by(StoredRefund.id))
        ]
        record.approvals = [
            {
                "order_id": a.order_id,
                "amount_cents": a.amount_cents,
                "currency": a.currency,
                "status": a.status,
            }
            for a in session.scalars(select(StoredApproval).order_by(StoredApproval.id))
        ]
        record.orders = [
            {
                "id": o.id,
                "customer_name": o.customer_name,
                "customer_email": o.customer_email,
                "restaurant": o.restaurant,
                "status": o.status,
                "total_cents": o.total_cents,
                "delivered_at": _utc(o.delivered_at),
            }
            for o in session.scalars(select(StoredOrder))
        ]


def _utc(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment is not None else None


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "[image]") for p in content if isinstance(p, dict))
    return str(content)


def _short(text: str, limit: int = 200) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
