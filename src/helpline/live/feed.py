"""One feed per process: reads new conversation events once and hands them to every open
page's stream in this process.

The ``conversation_events`` table is the truth; notifications only say "look now". A
process looks when one of its own transactions recorded an event, when another process says
so (PostgreSQL ``LISTEN/NOTIFY``, or Redis pub/sub on SQLite), and every few seconds in case
a notification was lost (often, while the notifications are down), so no event is missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

from helpline.store import ConversationEvent, Store

_log = logging.getLogger("helpline.live")

LOOK_EVERY_S = 10.0
"""How often a process looks for events when notifications work (in case one was lost)."""
LOOK_OFTEN_S = 0.5
"""How often it looks when they don't (or on SQLite, where other workers can't notify)."""


class Subscription:
    """The events of one conversation (or of all) after ``after``, for one open page."""

    def __init__(self, conversation_id: str | None, after: int) -> None:
        self.conversation_id = conversation_id
        self.after = after
        """Where the stream resumes from: a page that reconnects at once sends it back."""
        self.last_id = after
        self._pending: list[ConversationEvent] = []
        self._arrived = asyncio.Event()
        self.closed = False

    def offer(self, events: list[ConversationEvent]) -> None:
        """Keep the events this page has not had yet, in order, each once."""
        for event in events:
            wanted = self.conversation_id in (None, event.conversation_id)
            if wanted and event.id > self.last_id:
                self._pending.append(event)
                self.last_id = event.id
        if self._pending:
            self._arrived.set()

    def catch_up(self, backlog: list[ConversationEvent]) -> None:
        """Put the events read since ``after`` first: the feed may have offered newer ones
        while they were being read (each is kept once, in order)."""
        offered, self._pending = self._pending, []
        self.last_id = self.after
        self.offer(backlog)
        self.offer(offered)

    def end(self) -> None:
        """The server is going away: the page should reconnect (to another node)."""
        self.closed = True
        self._arrived.set()

    async def wait(self) -> None:
        await self._arrived.wait()

    def take(self) -> list[ConversationEvent]:
        events, self._pending = self._pending, []
        self._arrived.clear()
        return events


class LiveFeed:
    """This process's reader of ``store``'s events; ``wakeup`` starts what tells it of other
    processes' events (it gets the feed's ``look`` and returns what to await when closing)."""

    def __init__(
        self,
        store: Store,
        wakeup: Callable[[LiveFeed], asyncio.Task[None]] | None = None,
        *,
        look_every: float | None = None,
    ) -> None:
        self.store = store
        self.notified = False
        """Whether other processes' notifications reach this one right now."""
        self._wakeup = wakeup
        self._look_every = look_every
        self._subscriptions: set[Subscription] = set()
        self._look_now = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cursor = 0
        self._started: asyncio.Future[None] | None = None
        self._stop_listening: Callable[[], None] | None = None

    async def start(self) -> None:
        """Begin reading (once; later calls wait for the first)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                self.loop = asyncio.get_running_loop()
                self._cursor = await self.store.call(self.store.events.last_id)
                self._stop_listening = self.store.events.on_recorded(self.look_soon)
                self._tasks.append(asyncio.create_task(self._read()))
                if self._wakeup is not None:
                    self._tasks.append(self._wakeup(self))
                self._started.set_result(None)
            except BaseException as error:
                self._started.set_exception(error)
                self._started = None
                raise
        await asyncio.shield(self._started)

    async def subscribe(self, conversation_id: str | None, after: int | None) -> Subscription:
        """A page's stream: the events after ``after`` (from now when ``None``, or when it is
        beyond the newest event, which this database never sent), then each new one as it is
        committed."""
        await self.start()
        events = self.store.events
        newest = await self.store.call(events.last_id)
        after = newest if after is None else min(after, newest)
        subscription = Subscription(conversation_id, after)
        self._subscriptions.add(subscription)  # before reading the backlog, so nothing slips by
        backlog: list[ConversationEvent] = []
        while True:
            cursor = backlog[-1].id if backlog else after
            batch = await self.store.call(events.after, cursor, conversation_id)
            backlog += batch
            if len(batch) < 500:
                subscription.catch_up(backlog)
                return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def look(self) -> None:
        """Read new events now (called on this feed's loop)."""
        self._look_now.set()

    def look_soon(self) -> None:
        """:meth:`look`, from any thread (a transaction that recorded an event just ended)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._look_now.set)

    def end_streams(self) -> None:
        """End every open stream (the server is shutting down); pages reconnect elsewhere."""
        for subscription in list(self._subscriptions):
            subscription.end()

    def end_streams_soon(self) -> None:
        """:meth:`end_streams`, from a signal handler or another thread."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(self.end_streams)

    async def close(self) -> None:
        self.end_streams()
        if self._stop_listening is not None:
            self._stop_listening()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._started = None

    def _interval(self) -> float:
        if self._look_every is not None:
            return self._look_every
        if self.store.engine.dialect.name == "sqlite" or not self.notified:
            return LOOK_OFTEN_S
        return LOOK_EVERY_S

    async def _read(self) -> None:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._look_now.wait(), self._interval())
            self._look_now.clear()
            try:
                await self._read_new()
            except Exception:
                _log.exception("Could not read new conversation events; trying again shortly")
                await asyncio.sleep(LOOK_OFTEN_S)

    async def _read_new(self) -> None:
        events = self.store.events
        while True:
            batch = await self.store.call(events.after, self._cursor)
            if not batch:
                return
            self._cursor = batch[-1].id
            for subscription in list(self._subscriptions):
                subscription.offer(batch)
            if len(batch) < 500:
                return
