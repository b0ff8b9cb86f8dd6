"""What tells a process that another one recorded an event: PostgreSQL ``LISTEN`` on the
database every node shares, or, on SQLite with several workers, a Redis channel.

Each runs as a task beside the feed and reconnects on its own; while it is down the feed
looks for events often instead, so pages still update within a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from helpline.config import Settings
from helpline.live.feed import LOOK_OFTEN_S, LiveFeed
from helpline.store import Store
from helpline.store.conversation_events import CHANNEL

if TYPE_CHECKING:
    import redis.asyncio as aioredis

_log = logging.getLogger("helpline.live")

RECONNECT_S = 1.0

Wakeup = Callable[[LiveFeed], "asyncio.Task[None]"]


def wakeup_for(store: Store, settings: Settings) -> Wakeup | None:
    """PostgreSQL ``LISTEN`` when the database is PostgreSQL, Redis pub/sub when Redis is
    configured on SQLite, otherwise nothing (one process: its own events wake it)."""
    if store.engine.dialect.name == "postgresql":
        conninfo = store.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        return lambda feed: asyncio.create_task(_listen_postgres(feed, conninfo))
    if settings.redis_url:
        url, channel = settings.redis_url, redis_channel(settings)
        return lambda feed: asyncio.create_task(_listen_redis(feed, url, channel))
    return None


def redis_channel(settings: Settings) -> str:
    from helpline.server.ratelimit import DEFAULT_REDIS_PREFIX

    return f"{settings.redis_prefix or DEFAULT_REDIS_PREFIX}events"


async def _listen_postgres(feed: LiveFeed, conninfo: str) -> None:
    async def notifications() -> AsyncIterator[None]:
        import psycopg

        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            yield None
            async for _notification in conn.notifies():
                yield None

    await _keep_listening(feed, "PostgreSQL", notifications)


async def _listen_redis(feed: LiveFeed, url: str, channel: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    publish = _publisher(client, channel)
    remove = feed.store.events.on_recorded(lambda: _call_on(feed, publish))

    async def notifications() -> AsyncIterator[None]:
        async with client.pubsub() as pubsub:
            await pubsub.subscribe(channel)
            yield None
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield None

    try:
        await _keep_listening(feed, "Redis", notifications)
    finally:
        remove()
        await client.aclose()


async def _keep_listening(
    feed: LiveFeed, where: str, notifications: Callable[[], AsyncIterator[None]]
) -> None:
    """Have ``feed`` look at each of ``notifications()`` (the first says listening began);
    start listening again after a failure, warning once per outage."""
    warned = False
    while True:
        try:
            async for _ in notifications():
                feed.notified = True
                if warned:
                    _log.info("Listening for conversation events on %s again.", where)
                    warned = False
                feed.look()  # the first time: whatever happened while not listening
        except asyncio.CancelledError:
            raise
        except Exception as error:
            feed.notified = False
            if not warned:
                warned = True
                _log.warning(
                    "Not listening for conversation events on %s (%s: %s); looking "
                    "every %.1f s until it answers.",
                    where,
                    type(error).__name__,
                    error,
                    LOOK_OFTEN_S,
                )
        await asyncio.sleep(RECONNECT_S)


def _publisher(client: aioredis.Redis, channel: str) -> Callable[[], None]:
    """Tell the other processes (on the feed's loop) that this one recorded an event."""
    tasks: set[asyncio.Task[None]] = set()

    async def send() -> None:
        try:
            await client.publish(channel, "1")
        except Exception:  # they look often while Redis is away
            _log.debug("Could not publish a conversation event on Redis", exc_info=True)

    def publish() -> None:
        task = asyncio.create_task(send())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return publish


def _call_on(feed: LiveFeed, function: Callable[[], None]) -> None:
    loop = feed.loop
    if loop is not None and not loop.is_closed():
        with suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(function)
