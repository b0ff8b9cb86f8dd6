"""Orders, their items, and the refunds paid on them (the default order system's data)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, selectinload

from helpline.store.db import locked_row
from helpline.store.tables import Base, utcnow


class StoredOrder(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    """As the customer sees it, e.g. ``DD-10234``."""
    customer_name: Mapped[str] = mapped_column(String(200))
    customer_email: Mapped[str] = mapped_column(String(320), index=True)
    placed_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    total_cents: Mapped[int] = mapped_column(Integer)
    """What the customer paid, after discounts and fees."""
    restaurant: Mapped[str] = mapped_column(String(200))
    items: Mapped[list[StoredOrderItem]] = relationship(
        order_by="StoredOrderItem.id", cascade="all, delete-orphan"
    )
    refunds: Mapped[list[StoredRefund]] = relationship(order_by="StoredRefund.id")


class _PerOrderRow:
    """A row that belongs to one order: its own id and the order's, first in the table as migrated."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True, sort_order=-2)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True, sort_order=-1)


class StoredOrderItem(_PerOrderRow, Base):
    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)


class StoredRefund(_PerOrderRow, Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("order_id", "item_name"),)
    """Each item of an order is refunded at most once, even under concurrent requests."""

    item_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    request_id: Mapped[str | None] = mapped_column(String(128))
    """The request (tool call id) that asked for it, so a retried request is recognised."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time here is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class OrderItem:
    """One line of an order."""

    name: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True)
class Refund:
    """Money paid back for one item of an order."""

    item_name: str
    quantity: int
    amount_cents: int
    reason: str
    ticket_id: int | None = None
    request_id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Order:
    """An order with its items and the refunds already paid on it."""

    id: str
    customer_name: str
    customer_email: str
    placed_at: datetime
    delivered_at: datetime | None
    status: str
    currency: str
    total_cents: int
    restaurant: str
    items: tuple[OrderItem, ...] = ()
    refunds: tuple[Refund, ...] = ()

    @property
    def refunded_cents(self) -> int:
        return sum(refund.amount_cents for refund in self.refunds)


class RefundRefused(Exception):
    """The order system refused to record refunds; nothing was recorded."""


class AlreadyRefunded(RefundRefused):
    """Some of the items were refunded before (possibly by a concurrent request)."""

    def __init__(self, message: str, items: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.items = tuple(items)
        """The items that already had a refund."""


class NothingLeftToRefund(RefundRefused):
    """Everything paid for the order has been refunded already."""


def _order(row: StoredOrder) -> Order:
    return Order(
        **_order_columns(row),
        items=tuple(OrderItem(i.name, i.quantity, i.unit_price_cents) for i in row.items),
        refunds=tuple(Refund(**_refund_columns(r)) for r in row.refunds),
    )


def _order_columns(order: Order | StoredOrder) -> dict[str, Any]:
    """An order's own fields, from either side, times in UTC: one list for reading and writing."""
    return {
        "id": order.id,
        "customer_name": order.customer_name,
        "customer_email": order.customer_email,
        "placed_at": as_utc(order.placed_at),
        "delivered_at": as_utc(order.delivered_at) if order.delivered_at else None,
        "status": order.status,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "restaurant": order.restaurant,
    }


def _refund_columns(refund: Refund | StoredRefund) -> dict[str, Any]:
    """A refund's fields, from either side; one not yet stored without a time is made now."""
    return {
        "item_name": refund.item_name,
        "quantity": refund.quantity,
        "amount_cents": refund.amount_cents,
        "reason": refund.reason,
        "ticket_id": refund.ticket_id,
        "request_id": refund.request_id,
        "created_at": as_utc(refund.created_at) if refund.created_at else utcnow(),
    }


class Orders:
    """Repository for orders and refunds; it also serves as the default ``OrderSystem``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, order_id: str) -> Order | None:
        with Session(self._engine) as session:
            row = session.get(StoredOrder, order_id)
            return _order(row) if row else None

    def recent_for_customer(self, email: str, limit: int = 5) -> list[Order]:
        """The latest orders placed with this email address (case-insensitive), newest first."""
        wanted = email.strip().lower()
        with Session(self._engine) as session:
            rows = session.scalars(
                select(StoredOrder)
                .options(selectinload(StoredOrder.items), selectinload(StoredOrder.refunds))
                .where(func.lower(StoredOrder.customer_email) == wanted)
                .order_by(StoredOrder.placed_at.desc())
                .limit(limit)
            )
            return [_order(row) for row in rows]

    def add(self, order: Order) -> bool:
        """Store an order with its items; returns False (and changes nothing) if it exists."""
        try:
            with Session(self._engine) as session, session.begin():
                if session.get(StoredOrder, order.id) is not None:
                    return False
                session.add(
                    StoredOrder(
                        **_order_columns(order),
                        items=[
                            StoredOrderItem(
                                name=i.name,
                                quantity=i.quantity,
                                unit_price_cents=i.unit_price_cents,
                            )
                            for i in order.items
                        ],
                    )
                )
        except IntegrityError:
            return False  # a concurrent add of the same order won
        return True

    def record_refunds(self, order_id: str, refunds: Sequence[Refund]) -> list[Refund]:
        """Record refunds atomically (all or none) and return them as recorded.

        The order is locked while the rules that concurrent requests could break are checked
        again: each item is refunded once (else :class:`AlreadyRefunded`), and the order never
        pays back more than was paid (amounts are trimmed to what is left; with nothing left,
        :class:`NothingLeftToRefund`).
        """
        with Session(self._engine) as session, session.begin():
            order = locked_row(session, select(StoredOrder).where(StoredOrder.id == order_id))
            if order is None:
                raise LookupError(f"there is no order {order_id}")
            done = session.execute(
                select(StoredRefund.item_name, StoredRefund.amount_cents).where(
                    StoredRefund.order_id == order_id
                )
            ).all()
            clashes = sorted({r.item_name for r in refunds} & {name for name, _ in done})
            if clashes:
                raise AlreadyRefunded(
                    f"already refunded on order {order_id}: {', '.join(clashes)}", clashes
                )
            left = order.total_cents - sum(amount for _, amount in done)
            if left <= 0:
                raise NothingLeftToRefund(f"everything paid for order {order_id} is refunded")
            recorded = []
            for refund in refunds:
                amount = min(refund.amount_cents, left)
                left -= amount
                recorded.append(replace(refund, amount_cents=amount))
            session.add_all(StoredRefund(order_id=order_id, **_refund_columns(r)) for r in recorded)
        return recorded
