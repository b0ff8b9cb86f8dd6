"""Conversations and their messages, in the order they were sent to the model."""

from __future__ import annotations

import dataclasses
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CTE,
    JSON,
    Connection,
    Engine,
    Insert,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from helpline.store.conversation_events import AGENT_REPLY, STATUS, record_event
from helpline.store.customers import VerifiedCustomer
from helpline.store.tables import (
    Conversation,
    StoredImage,
    StoredMessage,
    StoredReceipt,
    Ticket,
    TurnUsage,
    utcnow,
)

ACTIVE = "active"
WAITING_FOR_AGENT = "waiting_for_agent"
"""A person has taken the conversation over: the assistant stays out of it until handed back."""
CONVERSATION_STATUSES = (ACTIVE, WAITING_FOR_AGENT)

AGENT = "agent"
"""The ``name`` on assistant messages a person wrote."""

FORGOTTEN_NAME = "Deleted customer"
FORGOTTEN_ISSUE = "(The conversation was deleted at the customer's request.)"


class ConversationGone(LookupError):
    """There is no such conversation (any more): it was deleted, or never existed."""


@dataclass(frozen=True)
class TurnStart:
    """A turn that holds the conversation's lease: the history (the customer's new message
    last) and the conversation's status."""

    history: list[dict[str, Any]]
    status: str


@dataclass(frozen=True)
class ConversationInfo:
    """A conversation's metadata, detached from the database session."""

    id: str
    created_at: datetime
    updated_at: datetime
    status: str
    token_hash: str | None
    prompt_tokens: int
    completion_tokens: int
    customer_id: str | None = None
    """The signed-in customer it belongs to (the business's id for them); ``None``: anonymous."""


class Conversations:
    """Repository for conversations and messages."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        token_hash: str | None = None,
        messages: Sequence[dict[str, Any]] = (),
        customer: VerifiedCustomer | None = None,
        channel: str | None = None,
        external_thread_id: str | None = None,
    ) -> str:
        """Start a conversation, with its first ``messages`` if any, and return its id;
        ``customer``: the signed-in customer it belongs to; ``channel`` and
        ``external_thread_id``: where it is written from (one conversation per thread)."""
        conversation_id = secrets.token_hex(8)
        now = utcnow()
        with self._engine.begin() as connection:
            connection.execute(
                insert(Conversation).values(
                    id=conversation_id,
                    token_hash=token_hash,
                    created_at=now,
                    updated_at=now,
                    status=ACTIVE,
                    prompt_tokens=0,
                    completion_tokens=0,
                    message_count=len(messages),
                    customer_id=customer.id if customer else None,
                    customer_email=customer.email if customer else None,
                    customer_name=customer.name if customer else None,
                    channel=channel,
                    external_thread_id=external_thread_id,
                )
            )
            if messages:
                rows = [_message_row(conversation_id, i, m, now) for i, m in enumerate(messages)]
                connection.execute(_INSERT_MESSAGE, rows)
        return conversation_id

    def get(self, conversation_id: str) -> ConversationInfo | None:
        """A conversation's metadata (one cheap query: every request is authorised with it)."""
        with self._engine.connect() as connection:
            row = connection.execute(_INFO, {"cid": conversation_id}).one_or_none()
        return ConversationInfo(**row._mapping) if row else None

    def for_thread(self, channel: str, external_thread_id: str) -> str | None:
        """The conversation of a channel's thread, if it has one."""
        with self._engine.connect() as connection:
            return connection.execute(
                select(Conversation.id).where(
                    Conversation.channel == channel,
                    Conversation.external_thread_id == external_thread_id,
                )
            ).scalar_one_or_none()

    def latest_id(self) -> str | None:
        """The most recently active conversation."""
        with Session(self._engine) as session:
            return session.scalar(
                select(Conversation.id).order_by(Conversation.updated_at.desc()).limit(1)
            )

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's messages in wire form, in order."""
        with self._engine.connect() as connection:
            return list(connection.execute(_HISTORY, {"cid": conversation_id}).scalars())

    def append(
        self,
        conversation_id: str,
        wires: list[dict[str, Any]],
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> list[int]:
        """Append messages atomically (all or none) and return their ids."""
        return self._append(conversation_id, wires, prompt_tokens, completion_tokens)

    def begin_turn(
        self, conversation_id: str, holder: str, lease: timedelta, user_wire: dict[str, Any]
    ) -> TurnStart | None:
        """Take the turn lease, store the customer's message and read the history, in one
        transaction; ``None`` (and nothing stored) while another turn holds the lease.
        Raises :class:`ConversationGone` if there is no such conversation.

        A lease in the database, not a process lock, so turns are serialised across
        workers and machines sharing one database.
        """
        start = self._take_turn(conversation_id, holder, lease, user_wire)
        if start is None and self.get(conversation_id) is None:
            raise ConversationGone(conversation_id)
        return start

    def _take_turn(
        self, conversation_id: str, holder: str, lease: timedelta, user_wire: dict[str, Any]
    ) -> TurnStart | None:
        if self._engine.dialect.name == "postgresql":
            return self._begin_turn_in_one_statement(conversation_id, holder, lease, user_wire)
        now = utcnow()
        with self._engine.begin() as connection:
            taken = connection.execute(
                _TAKE_LEASE,
                {"cid": conversation_id, "holder": holder, "now": now, "expires": now + lease},
            ).one_or_none()
            if taken is None:
                return None
            count, status = taken
            connection.execute(
                _INSERT_MESSAGE, [_message_row(conversation_id, count - 1, user_wire, now)]
            )
            history = list(connection.execute(_HISTORY, {"cid": conversation_id}).scalars())
            return TurnStart(history, status)

    def _begin_turn_in_one_statement(
        self, conversation_id: str, holder: str, lease: timedelta, user_wire: dict[str, Any]
    ) -> TurnStart | None:
        """PostgreSQL: the same work as one statement, which is its own transaction."""
        now = utcnow()
        with _autocommit(self._engine) as connection:
            row = connection.execute(
                _begin_turn_pg(),
                {
                    "cid": conversation_id,
                    "holder": holder,
                    "now": now,
                    "expires": now + lease,
                    "role": user_wire["role"],
                    "wire": user_wire,
                },
            ).one_or_none()
        if row is None:
            return None
        earlier = row.history or []  # what was there before this statement stored the message
        return TurnStart([*earlier, user_wire], row.status)

    def _append(
        self,
        conversation_id: str,
        wires: Sequence[dict[str, Any]],
        prompt_tokens: int,
        completion_tokens: int,
        release: str | None = None,
    ) -> list[int]:
        """Insert ``wires`` after the conversation's last message, atomically; release the
        lease of ``release`` if it still holds it. A turn's answer is one statement on
        PostgreSQL; the rest is two in a transaction."""
        now = utcnow()
        counts = {
            "cid": conversation_id,
            "added": len(wires),
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "now": now,
            "holder": release,
        }
        if len(wires) == 1 and self._engine.dialect.name == "postgresql":  # a turn's answer
            (wire,) = wires
            with _autocommit(self._engine) as connection:
                added = {**counts, "role": wire["role"], "wire": wire}
                return [connection.execute(_APPEND_ONE_PG, added).scalar_one()]
        with self._engine.begin() as connection:
            count = connection.execute(_COUNT_APPENDED, counts).scalar_one()
            first = count - len(wires)
            rows = [_message_row(conversation_id, first + i, w, now) for i, w in enumerate(wires)]
            return list(connection.execute(_INSERT_MESSAGE, rows).scalars())

    def add_agent_reply(self, conversation_id: str, text: str) -> int | None:
        """Store a person's reply (the conversation stays with the team); its id, or ``None``
        while the assistant is answering (try again when its turn is over)."""
        now = utcnow()
        wire = {"role": "assistant", "name": AGENT, "content": text}
        with self._engine.begin() as connection:
            count = connection.execute(
                _APPEND_IF_FREE, {"cid": conversation_id, "now": now, "holder": None}
            ).scalar_one_or_none()
            if count is None:
                return None
            row = _message_row(conversation_id, count - 1, wire, now)
            message_id = int(connection.execute(_INSERT_MESSAGE, [row]).scalar_one())
            reply = {"message_id": message_id, "text": text, "status": WAITING_FOR_AGENT}
            record_event(connection, conversation_id, AGENT_REPLY, reply)  # for open pages
            return message_id

    def end_turn(
        self,
        conversation_id: str,
        holder: str,
        wires: list[dict[str, Any]],
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> list[int]:
        """Store the turn's last messages and release its lease, in one transaction."""
        return self._append(conversation_id, wires, prompt_tokens, completion_tokens, holder)

    def delete(self, conversation_id: str) -> bool:
        """Forget a conversation at the customer's request: its messages, images and receipts
        go; what its model replies cost stays in the totals; tickets filed from it keep their number, category, amount and status (refunds are
        business records) but lose the customer's name and words. False if there was none."""
        with Session(self._engine) as session, session.begin():
            if session.get(Conversation, conversation_id) is None:
                return False
            for table in (StoredMessage, StoredImage, StoredReceipt):
                session.execute(delete(table).where(table.conversation_id == conversation_id))
            session.execute(
                update(Ticket)
                .where(Ticket.conversation_id == conversation_id)
                .values(
                    name=FORGOTTEN_NAME,
                    issue=FORGOTTEN_ISSUE,
                    conversation_id=None,
                    tool_call_id=None,  # idempotency ends with the conversation it served
                    updated_at=utcnow(),
                )
            )
            session.execute(
                update(TurnUsage)
                .where(TurnUsage.conversation_id == conversation_id)
                .values(conversation_id=None, context_note=None)  # cost stays, words go
            )
            session.execute(delete(Conversation).where(Conversation.id == conversation_id))
        return True

    def renew_turn(self, conversation_id: str, holder: str, lease: timedelta) -> bool:
        """Extend the turn lease ``holder`` holds by ``lease`` from now (one UPDATE, run every
        few seconds while a turn runs); False if it holds the lease no more."""
        values = {"cid": conversation_id, "holder": holder, "expires": utcnow() + lease}
        with _autocommit(self._engine) as connection:
            return connection.execute(_RENEW_LEASE, values).rowcount == 1

    def release_turn(self, conversation_id: str, holder: str) -> None:
        """Give the lease back without storing anything (a turn that failed)."""
        with self._engine.begin() as connection:
            connection.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.turn_holder == holder)
                .values(turn_holder=None, turn_expires_at=None)
            )

    def set_status(self, conversation_id: str, status: str) -> None:
        with Session(self._engine) as session, session.begin():
            connection = session.connection()
            changed = connection.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(status=status, updated_at=utcnow())
            ).rowcount
            if changed:  # open pages learn who answers now
                record_event(connection, conversation_id, STATUS, {"status": status})

    def set_intent(self, conversation_id: str, intent: str) -> None:
        """Record the intent of the conversation's first message (kept if one is already set)."""
        with self._engine.begin() as connection:
            connection.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.intent.is_(None))
                .values(intent=intent)
            )


def _message_row(
    conversation_id: str, position: int, wire: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "position": position,
        "role": wire["role"],
        "wire": wire,
        "created_at": now,
    }


# The statements of a turn's hot path, built once: constructing them per call costs more
# CPU than SQLite takes to run them.
_conversations = cast(Table, Conversation.__table__)
_messages = cast(Table, StoredMessage.__table__)
_lease_free = or_(
    _conversations.c.turn_holder.is_(None),
    _conversations.c.turn_expires_at < bindparam("now"),
    _conversations.c.turn_holder == bindparam("holder"),
)
_TAKE_LEASE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("cid"), _lease_free)
    .values(
        turn_holder=bindparam("holder"),
        turn_expires_at=bindparam("expires"),
        message_count=_conversations.c.message_count + 1,
        updated_at=bindparam("now"),
    )
    .returning(_conversations.c.message_count, _conversations.c.status)
)
_APPEND_IF_FREE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("cid"), _lease_free)
    .values(
        message_count=_conversations.c.message_count + 1,
        status=WAITING_FOR_AGENT,
        updated_at=bindparam("now"),
    )
    .returning(_conversations.c.message_count)
)
_still_held = _conversations.c.turn_holder == bindparam("holder")
_RENEW_LEASE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("cid"), _still_held)
    .values(turn_expires_at=bindparam("expires"))
)
_COUNT_APPENDED = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("cid"))
    .values(
        message_count=_conversations.c.message_count + bindparam("added"),
        prompt_tokens=_conversations.c.prompt_tokens + bindparam("prompt"),
        completion_tokens=_conversations.c.completion_tokens + bindparam("completion"),
        updated_at=bindparam("now"),
        turn_holder=case((_still_held, None), else_=_conversations.c.turn_holder),
        turn_expires_at=case((_still_held, None), else_=_conversations.c.turn_expires_at),
    )
    .returning(_conversations.c.message_count)
)
_INSERT_MESSAGE = insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True)


# PostgreSQL does a turn's two writes as one statement each (data-modifying CTEs, no BEGIN or
# COMMIT), so each is one round trip instead of five: run on a thread, every round trip waits
# for the GIL behind a busy event loop (measured: half the CPU per turn, and 500 streams on
# two workers went from 100-280 ms to 50-60 ms p99 added time to first token).
def _insert_one_after(counted: CTE) -> Insert:
    """Store the message in parameters ``cid``, ``role``, ``wire`` and ``now`` at the last
    position ``counted`` returns (nothing if it returns no row)."""
    row = select(
        bindparam("cid"),
        counted.c.message_count - 1,
        bindparam("role"),
        bindparam("wire", type_=_messages.c.wire.type),
        bindparam("now", type_=_messages.c.created_at.type),
    ).select_from(counted)
    columns = ["conversation_id", "position", "role", "wire", "created_at"]
    return insert(_messages).from_select(columns, row)


@functools.cache
def _begin_turn_pg() -> Any:
    """PostgreSQL's turn start in one statement (built on first use, so that SQLite never
    loads the PostgreSQL dialect)."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    lease_taken = _TAKE_LEASE.cte("lease")
    wires = func.json_agg(aggregate_order_by(_messages.c.wire, _messages.c.position))
    history_before = (  # the statement sees the table as it was before its own insert
        select(type_coerce(wires, JSON))
        .where(_messages.c.conversation_id == bindparam("cid"))
        .scalar_subquery()
    )
    return select(lease_taken.c.status, history_before.label("history")).add_cte(
        _insert_one_after(lease_taken).cte("stored")
    )


_counted = _COUNT_APPENDED.cte("counted")
_APPEND_ONE_PG = _insert_one_after(_counted).add_cte(_counted).returning(_messages.c.id)
_INFO = select(
    *(_conversations.c[field.name] for field in dataclasses.fields(ConversationInfo))
).where(_conversations.c.id == bindparam("cid"))
_HISTORY = (
    select(_messages.c.wire)
    .where(_messages.c.conversation_id == bindparam("cid"))
    .order_by(_messages.c.position)
)


def _autocommit(engine: Engine) -> Connection:
    """A connection whose every statement is its own transaction: no BEGIN, no COMMIT."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
