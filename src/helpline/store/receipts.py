"""Receipts read from customers' photos, linked to the conversation they came from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from helpline.store.tables import StoredReceipt


class Receipts:
    """Repository for read receipts."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(
        self,
        data: dict[str, Any],
        source: str,
        *,
        conversation_id: str | None = None,
        tool_call_id: str | None = None,
    ) -> int:
        """Store one read receipt and return its id."""
        with Session(self._engine) as session, session.begin():
            row = StoredReceipt(
                data=data, source=source, conversation_id=conversation_id, tool_call_id=tool_call_id
            )
            session.add(row)
            session.flush()
            return row.id

    def for_conversation(self, conversation_id: str) -> list[dict[str, Any]]:
        """The receipts read in a conversation, oldest first."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(StoredReceipt.data)
                .where(StoredReceipt.conversation_id == conversation_id)
                .order_by(StoredReceipt.id)
            )
            return list(rows)
