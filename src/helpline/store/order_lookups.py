"""Order look-ups per conversation, counted so one conversation cannot probe many addresses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Engine, ForeignKey, Integer, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from helpline.store.db import locked_row
from helpline.store.tables import Base, Conversation, utcnow


class StoredOrderLookup(Base):
    """One look-up of an order or of an address's orders; no address or number is kept."""

    __tablename__ = "order_lookups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    found: Mapped[bool | None] = mapped_column(Boolean)
    """``None`` while the look-up runs; it counts as failed until then."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderLookups:
    """Repository for the order look-ups conversations made."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def begin(self, conversation_id: str, most: int, most_failed: int) -> int | None:
        """Count a new look-up and return its id, or ``None`` if the conversation has made
        ``most`` look-ups or ``most_failed`` failed ones; the count and the new row are atomic,
        so parallel calls in one model round cannot slip past the limits."""
        with Session(self._engine) as session, session.begin():
            locked_row(session, select(Conversation.id).where(Conversation.id == conversation_id))
            made, failed = session.execute(
                select(
                    func.count(),
                    func.count().filter(
                        or_(StoredOrderLookup.found.is_(None), StoredOrderLookup.found.is_(False))
                    ),
                ).where(StoredOrderLookup.conversation_id == conversation_id)
            ).one()
            if made >= most or failed >= most_failed:
                return None
            row = StoredOrderLookup(conversation_id=conversation_id)
            session.add(row)
            session.flush()
            return row.id

    def finish(self, lookup_id: int, found: bool) -> None:
        """Record whether the look-up found what it looked for."""
        with Session(self._engine) as session, session.begin():
            row = session.get(StoredOrderLookup, lookup_id)
            if row is not None:
                row.found = found
