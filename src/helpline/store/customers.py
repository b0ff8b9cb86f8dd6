"""Customers the business signed in, and the conversations that belong to each of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from helpline.customers import VerifiedCustomer
from helpline.store.tables import Conversation, StoredMessage

LAST_MESSAGE_CHARS = 200
"""How much of a conversation's last message its summary shows."""


@dataclass(frozen=True)
class CustomerConversation:
    """One of a customer's conversations, as their history lists it."""

    id: str
    started: datetime
    updated: datetime
    status: str
    last_message: str | None
    """The latest words the customer or support wrote (shortened), ``None`` before any."""


class Customers:
    """Repository: who a conversation belongs to, and each customer's conversations."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def of_conversation(self, conversation_id: str) -> VerifiedCustomer | None:
        """The signed-in customer a conversation belongs to; ``None`` for an anonymous one."""
        query = select(
            Conversation.customer_id, Conversation.customer_email, Conversation.customer_name
        ).where(Conversation.id == conversation_id)
        with self._engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        if row is None or row.customer_id is None:
            return None
        return VerifiedCustomer(row.customer_id, row.customer_email or "", row.customer_name or "")

    def conversations(self, customer_id: str, limit: int = 20) -> list[CustomerConversation]:
        """The customer's latest conversations, most recently active first."""
        query = (
            select(
                Conversation.id,
                Conversation.created_at,
                Conversation.updated_at,
                Conversation.status,
            )
            .where(Conversation.customer_id == customer_id)
            .order_by(Conversation.updated_at.desc(), Conversation.id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
            return [
                CustomerConversation(
                    row.id,
                    row.created_at,
                    row.updated_at,
                    row.status,
                    _last_words(connection, row.id),
                )
                for row in rows
            ]


def _last_words(connection: Connection, conversation_id: str) -> str | None:
    """The latest message with words in it (tool rounds and images alone have none)."""
    query = (
        select(StoredMessage.wire)
        .where(
            StoredMessage.conversation_id == conversation_id,
            StoredMessage.role.in_(("user", "assistant")),
        )
        .order_by(StoredMessage.position.desc())
        .limit(10)
    )
    for wire in connection.execute(query).scalars():
        text = _words(wire.get("content"))
        if text:
            return text if len(text) <= LAST_MESSAGE_CHARS else text[: LAST_MESSAGE_CHARS - 1] + "…"
    return None


def _words(content: Any) -> str:
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        return ""
    lines = [line for line in content.splitlines() if not line.startswith("[Shared image:")]
    return " ".join(" ".join(lines).split())
