"""What happened in conversations, for open pages to follow live: agent replies, status
changes (handoffs, hand-backs), the desk's notices and approvals, and customers' messages
while a person has their conversation.

Each event is a row whose id only grows, in the order the events were committed, so a page
that resumes after event ``N`` (``Last-Event-ID``) misses nothing. An event is recorded in
the same transaction as the change it tells of; on PostgreSQL that transaction also sends a
``NOTIFY``, delivered to every listening process when it commits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from helpline.store.tables import Base, utcnow

CHANNEL = "helpline_events"
"""The PostgreSQL ``NOTIFY`` channel; the payload is the conversation id."""

AGENT_REPLY = "agent_reply"
STATUS = "status"
NOTICE = "notice"
APPROVAL = "approval"
CUSTOMER_MESSAGE = "customer_message"
"""Only while a person has the conversation (the assistant's turns are not announced)."""

_IN_COMMIT_ORDER = 0x68656C70
"""PostgreSQL advisory lock held from an event's insert to its commit, so ids commit in order."""
_RECORDED = "helpline.event_recorded"
"""Marks a pooled connection whose transaction recorded an event, until it is checked in."""


class StoredEvent(Base):
    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class ConversationEvent:
    id: int
    conversation_id: str
    kind: str
    data: dict[str, Any]
    created_at: datetime

    def payload(self) -> dict[str, Any]:
        """What a page receives: the event's own fields, its conversation and its time."""
        return {
            **self.data,
            "conversation_id": self.conversation_id,
            "at": self.created_at.isoformat(),
        }


def record_event(
    connection: Connection, conversation_id: str, kind: str, data: dict[str, Any]
) -> None:
    """Record an event in the caller's transaction; make it the transaction's last statement
    (on PostgreSQL it holds a lock until commit, so that ids commit in order)."""
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        connection.execute(_LOCK, {"key": _IN_COMMIT_ORDER})
    connection.execute(
        _INSERT, {"cid": conversation_id, "kind": kind, "data": data, "now": utcnow()}
    )
    if postgresql:
        connection.execute(_NOTIFY, {"channel": CHANNEL, "cid": conversation_id})
    connection.info[_RECORDED] = True


class ConversationEvents:
    """Repository for events; tells this process's listeners after each one is committed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        event.listen(engine, "checkin", self._checked_in)

    def publish(self, conversation_id: str, kind: str, data: dict[str, Any]) -> None:
        """Record an event on its own (when the change it tells of is already committed)."""
        with self._engine.begin() as connection:
            record_event(connection, conversation_id, kind, data)

    def after(
        self, event_id: int, conversation_id: str | None = None, limit: int = 500
    ) -> list[ConversationEvent]:
        """Events after ``event_id`` in order, of one conversation or of all."""
        query = _AFTER if conversation_id is None else _AFTER_IN
        with self._engine.connect() as connection:
            rows = connection.execute(
                query, {"after": event_id, "cid": conversation_id, "limit": limit}
            )
            return [ConversationEvent(**row._mapping) for row in rows]

    def last_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        with self._engine.connect() as connection:
            return int(connection.execute(_LAST).scalar_one())

    def on_recorded(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (from any thread) after a transaction that recorded an event
        ends; returns what removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def _checked_in(self, _dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_RECORDED, False):
            with self._lock:
                listeners = list(self._listeners)
            for listener in listeners:
                listener()


_events = cast(Table, StoredEvent.__table__)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_NOTIFY = text("SELECT pg_notify(:channel, :cid)")
_INSERT = insert(_events).values(
    conversation_id=bindparam("cid"),
    kind=bindparam("kind"),
    data=bindparam("data", type_=_events.c.data.type),
    created_at=bindparam("now", type_=_events.c.created_at.type),
)
_COLUMNS = (
    _events.c.id,
    _events.c.conversation_id,
    _events.c.kind,
    _events.c.data,
    _events.c.created_at,
)
_AFTER = (
    select(*_COLUMNS)
    .where(_events.c.id > bindparam("after"))
    .order_by(_events.c.id)
    .limit(bindparam("limit"))
)
_AFTER_IN = _AFTER.where(_events.c.conversation_id == bindparam("cid"))
_LAST = select(func.coalesce(func.max(_events.c.id), 0))
