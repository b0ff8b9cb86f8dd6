"""SQLAlchemy ORM tables: conversations, messages, tickets, images, receipts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Detached = TypeVar("Detached", bound="DataclassInstance")


def utcnow() -> datetime:
    return datetime.now(UTC)


def detached(info: type[Detached], row: Base) -> Detached:
    """The dataclass `info` filled from the row's same-named columns, usable after the session."""
    return info(**{field.name: getattr(row, field.name) for field in dataclasses.fields(info)})


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC, timezone-aware on every database (SQLite stores them without one)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime()}


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_channel_thread", "channel", "external_thread_id", unique=True),
    )
    """One conversation per thread of a channel (an email thread, a chat app's thread)."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="active", index=True)
    """``active``, or ``waiting_for_agent`` after a handoff."""
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    message_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Also the next message's position: appending needs no ``max()`` query."""
    turn_holder: Mapped[str | None] = mapped_column(String(64))
    turn_expires_at: Mapped[datetime | None]
    customer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    """The business's id for a signed-in customer (the token's ``sub``); ``None``: anonymous."""
    customer_email: Mapped[str | None] = mapped_column(String(254))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(32))
    """Where the customer writes from: ``web`` (the chat page and the widget), ``terminal``,
    or a later channel's name."""
    external_thread_id: Mapped[str | None] = mapped_column(String(200))
    """The channel's own id for the thread (an email's Message-ID, a chat app's thread)."""
    intent: Mapped[str | None] = mapped_column(String(64))
    """The profile's intent for the customer's first message; ``None``: none matched."""


class StoredMessage(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    wire: Mapped[dict[str, Any]]
    """The message exactly as sent to the model (OpenAI wire form)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint(
            "conversation_id", "tool_call_id", name="uq_tickets_conversation_id_tool_call_id"
        ),
    )
    """A call id is only unique within its conversation: providers number calls per reply."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    tool_call_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    issue: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), default="general")
    amount_cents: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredReceipt(Base):
    __tablename__ = "receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    tool_call_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredImage(Base):
    """An image a customer shared, validated and normalised once, referenced as ``image://ID``."""

    __tablename__ = "images"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    mime: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(Text)
    """Where it came from: ``upload:<filename>``, a URL, or a local path."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredAgent(Base):
    """A named support agent; only the SHA-256 of their key is kept."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredApproval(Base):
    """A refund waiting for (or decided by) a person: what would be paid, and why it waits."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint(
            "conversation_id", "request_id", name="uq_approvals_conversation_id_request_id"
        ),
    )
    """One approval per tool call in a conversation, so a retried call never queues twice."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    request_id: Mapped[str | None] = mapped_column(String(128))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_cents: Mapped[int] = mapped_column(Integer)
    refunds: Mapped[dict[str, Any]]
    """``{"items": [{item_name, quantity, amount_cents, reason}]}``: the refunds to record."""
    reasons: Mapped[dict[str, Any]]
    """``{"rules": [...], "text": "..."}``: why a person must decide."""
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(60))
    decision_note: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StoredAuditEntry(Base):
    """What an agent did, and when; kept when the conversation it concerns is deleted."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str | None] = mapped_column(String(32), index=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer)
    approval_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class TurnUsage(Base):
    """What one model reply read, wrote and cost, and what its request left out of the
    conversation to fit the model's context window."""

    __tablename__ = "turn_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )
    """``None`` once the conversation is deleted: what it cost stays in the totals."""
    model: Mapped[str] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    """All prompt tokens, the cached ones included."""
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    """US dollars, from the price table; ``None`` when the model's prices are unknown."""
    left_out: Mapped[int] = mapped_column(Integer, default=0)
    """History messages after the system prompt that the request left out."""
    context_note: Mapped[str | None] = mapped_column(Text)
    """The note the request sent in their place."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
