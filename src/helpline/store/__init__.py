"""Persistence: one :class:`Store` per database, with a repository per concern."""

from __future__ import annotations

from sqlalchemy import Engine

from helpline.store.conversations import ConversationInfo, Conversations
from helpline.store.db import create_db_engine, default_sqlite_url, migrate, normalize_url
from helpline.store.images import IMAGE_SCHEME, ImageRecord, Images
from helpline.store.orders import AlreadyRefunded, Order, OrderItem, Orders, Refund
from helpline.store.receipts import Receipts
from helpline.store.tickets import TICKET_STATUSES, TicketInfo, Tickets


class Store:
    """The database behind Helpline: conversations, tickets, images, orders, receipts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conversations = Conversations(engine)
        self.tickets = Tickets(engine)
        self.images = Images(engine)
        self.orders = Orders(engine)
        self.receipts = Receipts(engine)

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Connect to ``url`` (default: a SQLite file in the user's data folder) and migrate."""
        engine = create_db_engine(url or default_sqlite_url())
        migrate(engine)
        return cls(engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


__all__ = [
    "IMAGE_SCHEME",
    "TICKET_STATUSES",
    "AlreadyRefunded",
    "ConversationInfo",
    "Conversations",
    "ImageRecord",
    "Images",
    "Order",
    "OrderItem",
    "Orders",
    "Receipts",
    "Refund",
    "Store",
    "TicketInfo",
    "Tickets",
    "normalize_url",
]
