"""Conversations and their messages, in the order they were sent to the model."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from helpline.store.tables import Conversation, StoredMessage, utcnow


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


def _info(row: Conversation) -> ConversationInfo:
    return ConversationInfo(
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        status=row.status,
        token_hash=row.token_hash,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
    )


class Conversations:
    """Repository for conversations and messages."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, token_hash: str | None = None) -> str:
        """Start a conversation and return its id."""
        conversation_id = secrets.token_hex(8)
        with Session(self._engine) as session, session.begin():
            session.add(Conversation(id=conversation_id, token_hash=token_hash))
        return conversation_id

    def get(self, conversation_id: str) -> ConversationInfo | None:
        with Session(self._engine) as session:
            row = session.get(Conversation, conversation_id)
            return _info(row) if row else None

    def latest_id(self) -> str | None:
        """The most recently active conversation."""
        with Session(self._engine) as session:
            return session.scalar(
                select(Conversation.id).order_by(Conversation.updated_at.desc()).limit(1)
            )

    def recent(self, status: str | None = None, limit: int = 50) -> list[ConversationInfo]:
        with Session(self._engine) as session:
            query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(limit)
            if status:
                query = query.where(Conversation.status == status)
            return [_info(row) for row in session.scalars(query)]

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's messages in wire form, in order."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(StoredMessage.wire)
                .where(StoredMessage.conversation_id == conversation_id)
                .order_by(StoredMessage.position)
            )
            return list(rows)

    def append(
        self,
        conversation_id: str,
        wires: list[dict[str, Any]],
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> list[int]:
        """Append messages atomically (all or none) and return their ids."""
        with Session(self._engine) as session, session.begin():
            return _append(session, conversation_id, wires, prompt_tokens, completion_tokens)

    def begin_turn(
        self, conversation_id: str, holder: str, lease: timedelta, user_wire: dict[str, Any]
    ) -> list[dict[str, Any]] | None:
        """Take the turn lease, store the customer's message and return the history, in one
        transaction; ``None`` (and nothing stored) while another turn holds the lease.

        A lease in the database, not a process lock, so turns are serialised across
        workers and machines sharing one database.
        """
        now = utcnow()
        with Session(self._engine) as session, session.begin():
            taken = session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .where(
                    (Conversation.turn_holder.is_(None))
                    | (Conversation.turn_expires_at < now)
                    | (Conversation.turn_holder == holder)
                )
                .values(turn_holder=holder, turn_expires_at=now + lease)
            )
            if not taken.rowcount:  # type: ignore[attr-defined]
                return None
            _append(session, conversation_id, [user_wire], 0, 0)
            return list(
                session.scalars(
                    select(StoredMessage.wire)
                    .where(StoredMessage.conversation_id == conversation_id)
                    .order_by(StoredMessage.position)
                )
            )

    def end_turn(
        self,
        conversation_id: str,
        holder: str,
        wires: list[dict[str, Any]],
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> list[int]:
        """Store the turn's last messages and release its lease, in one transaction."""
        with Session(self._engine) as session, session.begin():
            ids = _append(session, conversation_id, wires, prompt_tokens, completion_tokens)
            _release(session, conversation_id, holder)
            return ids

    def release_turn(self, conversation_id: str, holder: str) -> None:
        """Give the lease back without storing anything (a turn that failed)."""
        with Session(self._engine) as session, session.begin():
            _release(session, conversation_id, holder)

    def set_status(self, conversation_id: str, status: str) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(status=status, updated_at=utcnow())
            )


def _append(
    session: Session,
    conversation_id: str,
    wires: list[dict[str, Any]],
    prompt_tokens: int,
    completion_tokens: int,
) -> list[int]:
    last = session.scalar(
        select(func.max(StoredMessage.position)).where(
            StoredMessage.conversation_id == conversation_id
        )
    )
    first = 0 if last is None else last + 1
    rows = [
        StoredMessage(
            conversation_id=conversation_id, position=first + offset, role=wire["role"], wire=wire
        )
        for offset, wire in enumerate(wires)
    ]
    session.add_all(rows)
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(
            updated_at=utcnow(),
            prompt_tokens=Conversation.prompt_tokens + prompt_tokens,
            completion_tokens=Conversation.completion_tokens + completion_tokens,
        )
    )
    session.flush()
    return [row.id for row in rows]


def _release(session: Session, conversation_id: str, holder: str) -> None:
    session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.turn_holder == holder)
        .values(turn_holder=None, turn_expires_at=None)
    )
