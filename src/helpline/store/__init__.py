"""Persistence: one :class:`Store` per database, with a repository per concern."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine

from helpline.store.agents import AgentInfo, AgentNameTaken, Agents
from helpline.store.approvals import ApprovalInfo, Approvals
from helpline.store.audit import AuditEntry, AuditLog
from helpline.store.conversation_events import ConversationEvent, ConversationEvents
from helpline.store.conversations import (
    ACTIVE,
    AGENT,
    CONVERSATION_STATUSES,
    WAITING_FOR_AGENT,
    ConversationGone,
    ConversationInfo,
    Conversations,
    TurnStart,
)
from helpline.store.customers import CustomerConversation, Customers, VerifiedCustomer
from helpline.store.db import create_db_engine, default_sqlite_url, migrate, normalize_url
from helpline.store.images import IMAGE_SCHEME, ImageRecord, Images
from helpline.store.notices import Notices
from helpline.store.order_lookups import OrderLookups
from helpline.store.orders import (
    AlreadyRefunded,
    NothingLeftToRefund,
    Order,
    OrderItem,
    Orders,
    Refund,
    RefundRefused,
)
from helpline.store.ratings import RatingInfo, Ratings
from helpline.store.receipts import Receipts
from helpline.store.stats import DeskStats, Stats
from helpline.store.tickets import (
    OPEN_TICKET_STATUSES,
    TICKET_STATUSES,
    TicketInfo,
    TicketLimitReached,
    Tickets,
)
from helpline.store.usage import DailyUsage, ReplyUsage, UsageLog, UsageTotals

T = TypeVar("T")


class Store:
    """The database behind Helpline: conversations, tickets, images, orders, receipts.

    The repositories are blocking; async code runs them with :meth:`call`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._threads: ThreadPoolExecutor | None = None
        if engine.dialect.name != "sqlite":
            # As many threads as the pool has connections: more would only queue for a
            # connection, and waking dozens of threads costs more CPU than the queries.
            pool_size = getattr(engine.pool, "size", lambda: 8)()
            self._threads = ThreadPoolExecutor(pool_size, thread_name_prefix="helpline-db")
        self.conversations = Conversations(engine)
        self.tickets = Tickets(engine)
        self.images = Images(engine)
        self.orders = Orders(engine)
        self.order_lookups = OrderLookups(engine)
        self.receipts = Receipts(engine)
        self.events = ConversationEvents(engine)
        self.ratings = Ratings(engine)
        self.stats = Stats(engine)
        self.customers = Customers(engine)
        self.agents = Agents(engine)
        self.approvals = Approvals(engine)
        self.audit = AuditLog(engine)
        self.notices = Notices(engine)
        self.usage = UsageLog(engine)

    @classmethod
    def open(cls, url: str | None = None) -> Store:
        """Connect to ``url`` (default: a SQLite file in the user's data folder) and migrate."""
        engine = create_db_engine(url or default_sqlite_url())
        migrate(engine)
        return cls(engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    async def call(self, function: Callable[..., T], /, *args: Any) -> T:
        """Run a blocking repository call: inline for SQLite, on the store's threads otherwise."""
        if self._threads is None:
            # SQLite runs in-process in well under a millisecond; handing it to a thread costs
            # more, and under load that thread waits for the GIL (measured: 10 ms against
            # 250 ms added time to first token at 200 concurrent streams).
            return function(*args)
        return await asyncio.get_running_loop().run_in_executor(self._threads, function, *args)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)
        self.engine.dispose()


__all__ = [
    "ACTIVE",
    "AGENT",
    "CONVERSATION_STATUSES",
    "IMAGE_SCHEME",
    "OPEN_TICKET_STATUSES",
    "TICKET_STATUSES",
    "WAITING_FOR_AGENT",
    "AgentInfo",
    "AgentNameTaken",
    "Agents",
    "AlreadyRefunded",
    "ApprovalInfo",
    "Approvals",
    "AuditEntry",
    "AuditLog",
    "ConversationEvent",
    "ConversationEvents",
    "ConversationGone",
    "ConversationInfo",
    "Conversations",
    "CustomerConversation",
    "Customers",
    "DailyUsage",
    "DeskStats",
    "ImageRecord",
    "Images",
    "NothingLeftToRefund",
    "Notices",
    "Order",
    "OrderItem",
    "OrderLookups",
    "Orders",
    "RatingInfo",
    "Ratings",
    "Receipts",
    "Refund",
    "RefundRefused",
    "ReplyUsage",
    "Stats",
    "Store",
    "TicketInfo",
    "TicketLimitReached",
    "Tickets",
    "TurnStart",
    "UsageLog",
    "UsageTotals",
    "VerifiedCustomer",
    "normalize_url",
]
