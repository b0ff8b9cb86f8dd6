"""Live updates over SSE: agent replies and status changes reach open pages, on any process,
and a page that reconnects with Last-Event-ID gets exactly what it missed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.live import LiveFeed
from helpline.models.scripted import ScriptedModel
from helpline.server import create_app
from helpline.server.routes_live import AGENT_RECHECK_S
from helpline.server.testing import LiveServer, SSEEvent, aiter_sse
from helpline.store import Store
from helpline.store.conversation_events import NOTICE, record_event
from tests.nodes import ADMIN, SHARED_REDIS, redis_prefix, start_node


@pytest.fixture
def server(store: Store) -> Iterator[LiveServer]:
    assistant = Assistant(ScriptedModel(), store, [], "You are the test desk.")
    with LiveServer(create_app(assistant, Settings(admin_key=ADMIN))) as live:
        yield live


def new_conversation(url: str) -> tuple[str, str]:
    body = httpx.post(url + "/api/conversations").json()
    return body["id"], body["token"]


def agent(url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    return httpx.request(method, url + path, headers=headers, **kwargs)  # type: ignore[arg-type]


@asynccontextmanager
async def stream(
    url: str, path: str, credential: str, last_event_id: int | None = None
) -> AsyncIterator[AsyncIterator[SSEEvent]]:
    """An open events stream; its first event (``ready``) has been read."""
    headers = {"Authorization": f"Bearer {credential}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", url + path, headers=headers) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = aiter_sse(response)
        ready = await anext(events)
        assert ready.event == "ready"
        if last_event_id is not None:  # the stream goes on from where the page was
            assert ready.data["last_event_id"] == last_event_id
        yield events


async def next_event(events: AsyncIterator[SSEEvent], within: float = 2.0) -> SSEEvent:
    return await asyncio.wait_for(anext(events), within)


async def test_an_agent_reply_and_a_hand_back_reach_the_open_page(server: LiveServer) -> None:
    conversation, token = new_conversation(server.url)
    async with stream(server.url, f"/api/conversations/{conversation}/events", token) as events:
        reply = await asyncio.to_thread(
            agent, server.url, "POST", f"/api/conversations/{conversation}/replies",
            json={"text": "Hi, Dana from support here."},
        )  # fmt: skip
        assert reply.status_code == 201
        started = time.monotonic()
        event = await next_event(events)
        assert time.monotonic() - started < 1
        assert event.event == "agent_reply"
        assert event.data["text"] == "Hi, Dana from support here."
        assert event.data["message_id"] == reply.json()["message_id"]
        assert event.data["conversation_id"] == conversation
        assert event.data["status"] == "waiting_for_agent"

        handed = await asyncio.to_thread(
            agent, server.url, "PATCH", f"/api/conversations/{conversation}",
            json={"status": "active"},
        )  # fmt: skip
        assert handed.status_code == 200
        event = await next_event(events)
        assert (event.event, event.data["status"]) == ("status", "active")


async def test_resuming_with_last_event_id_gets_exactly_what_was_missed(
    server: LiveServer, store: Store
) -> None:
    conversation, token = new_conversation(server.url)
    path = f"/api/conversations/{conversation}/events"
    async with stream(server.url, path, token) as events:
        store.conversations.add_agent_reply(conversation, "first")
        seen = await next_event(events)
    assert seen.data["text"] == "first"
    last_id = int(store.events.after(0, conversation)[-1].id)

    # While the page is away: two replies here, and one in another conversation.
    other, _ = new_conversation(server.url)
    store.conversations.add_agent_reply(conversation, "second")
    store.conversations.add_agent_reply(other, "not yours")
    store.conversations.set_status(conversation, "active")

    async with stream(server.url, path, token, last_event_id=last_id) as events:
        missed = [await next_event(events), await next_event(events)]
        store.conversations.add_agent_reply(conversation, "third")
        live = await next_event(events)
    assert [(e.event, e.data.get("text"), e.data["status"]) for e in missed] == [
        ("agent_reply", "second", "waiting_for_agent"),
        ("status", None, "active"),
    ]
    assert live.data["text"] == "third"


async def test_a_last_event_id_beyond_the_newest_event_resumes_from_now(
    server: LiveServer, store: Store
) -> None:
    """An id this database never sent (it was restored from a backup, or the page made one
    up) must not silence the stream until the ids catch up."""
    conversation, token = new_conversation(server.url)
    path = f"/api/conversations/{conversation}/events"
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(10**15)}
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", server.url + path, headers=headers) as response,
    ):
        events = aiter_sse(response)
        ready = await next_event(events)
        assert ready.data["last_event_id"] == store.events.last_id()
        store.conversations.add_agent_reply(conversation, "still here")
        assert (await next_event(events)).data["text"] == "still here"


async def test_the_agents_stream_follows_every_conversation(server: LiveServer) -> None:
    first, _ = new_conversation(server.url)
    second, _ = new_conversation(server.url)
    async with stream(server.url, "/api/events", ADMIN) as events:
        for conversation in (first, second):
            await asyncio.to_thread(
                agent, server.url, "POST", f"/api/conversations/{conversation}/replies",
                json={"text": f"Hello {conversation}"},
            )  # fmt: skip
        received = [await next_event(events), await next_event(events)]
    assert [e.data["conversation_id"] for e in received] == [first, second]


def test_only_the_conversations_own_token_or_an_agent_opens_its_stream(
    server: LiveServer,
) -> None:
    conversation, _ = new_conversation(server.url)
    _, other_token = new_conversation(server.url)
    path = f"{server.url}/api/conversations/{conversation}/events"

    def status(credential: str | None, url: str = path, last_event_id: str = "") -> int:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        if credential:
            headers["Authorization"] = f"Bearer {credential}"
        with httpx.stream("GET", url, headers=headers) as response:
            return response.status_code

    assert status(None) == 401
    assert status(other_token) == 403
    assert status(other_token, f"{server.url}/api/events") == 403
    assert status(ADMIN, last_event_id="soon") == 400


def test_a_deleted_conversation_takes_its_events_along(store: Store) -> None:
    conversation = store.conversations.create()
    store.conversations.add_agent_reply(conversation, "hello")
    assert len(store.events.after(0, conversation)) == 1
    assert store.conversations.delete(conversation)
    assert store.events.after(0, conversation) == []


async def test_an_agent_reply_through_one_process_reaches_a_page_open_on_another(
    store: Store, tmp_path: Path
) -> None:
    """PostgreSQL: LISTEN/NOTIFY; SQLite: Redis pub/sub. This test's own server is the
    first process; ``helpline serve`` the second."""
    prefix = redis_prefix()
    settings = Settings(admin_key=ADMIN, redis_url=SHARED_REDIS, redis_prefix=prefix)
    assistant = Assistant(ScriptedModel(), store, [], "You are the test desk.")
    env = {"HELPLINE_REDIS_URL": SHARED_REDIS, "HELPLINE_REDIS_PREFIX": prefix}
    other = start_node(tmp_path, store.engine.url.render_as_string(hide_password=False), env)
    try:
        with LiveServer(create_app(assistant, settings)) as first:
            conversation, token = new_conversation(first.url)
            path = f"/api/conversations/{conversation}/events"
            async with stream(other.url, path, token) as events:
                for text in ("ping", "pong"):
                    started = time.monotonic()
                    await asyncio.to_thread(
                        agent, first.url, "POST", f"/api/conversations/{conversation}/replies",
                        json={"text": text},
                    )  # fmt: skip
                    event = await next_event(events)
                    elapsed = time.monotonic() - started
                    assert event.data["text"] == text
                    assert elapsed < 1, f"{elapsed:.2f} s"
                # Stopping a node ends its streams at once (pages reconnect elsewhere),
                # rather than holding the shutdown until they close.
                stopping = time.monotonic()
                other.process.terminate()
                with pytest.raises(StopAsyncIteration):
                    await asyncio.wait_for(anext(events), 5)
            await asyncio.to_thread(other.process.wait, 10)
            assert time.monotonic() - stopping < 5
            assert "Application shutdown complete" in other.output()
    finally:
        other.stop()


async def test_events_written_at_once_arrive_each_once_in_order_and_resume_exactly(
    server: LiveServer, store: Store
) -> None:
    conversations = [store.conversations.create() for _ in range(6)]

    def reply_often(conversation: str) -> None:
        for number in range(8):
            store.conversations.add_agent_reply(conversation, f"reply {number}")

    async with stream(server.url, "/api/events", ADMIN) as events:
        writers = [asyncio.to_thread(reply_often, c) for c in conversations]
        await asyncio.gather(*writers)
        received = [await next_event(events, within=5) for _ in range(48)]
    stored = store.events.after(0)
    assert [e.data["message_id"] for e in received] == [e.data["message_id"] for e in stored]
    halfway = stored[23].id
    async with stream(server.url, "/api/events", ADMIN, last_event_id=halfway) as events:
        rest = [await next_event(events) for _ in range(24)]
    assert [e.data["message_id"] for e in rest] == [e.data["message_id"] for e in stored[24:]]


async def test_a_removed_agent_s_open_stream_stops_before_the_next_event(
    server: LiveServer, store: Store
) -> None:
    """Removing an agent ends their key at once, also for the agents' stream they have open."""
    _, key = store.agents.add("Mei Ling")
    conversation, _ = new_conversation(server.url)
    async with stream(server.url, "/api/events", key) as events:
        store.conversations.add_agent_reply(conversation, "before")
        assert (await next_event(events)).data["text"] == "before"
        assert store.agents.remove("Mei Ling")
        await asyncio.sleep(AGENT_RECHECK_S)
        store.conversations.add_agent_reply(conversation, "after")
        with pytest.raises(StopAsyncIteration):
            await next_event(events)


async def test_a_page_catching_up_while_new_events_arrive_misses_none(postgres_url: str) -> None:
    """On PostgreSQL the backlog is read on a worker thread while the feed goes on: a page
    resuming far behind gets every event once and in order, also those arriving meanwhile."""
    store = Store.open(postgres_url)
    feed = LiveFeed(store)
    try:
        conversation = store.conversations.create()
        with store.engine.begin() as connection:
            for number in range(1200):
                record_event(connection, conversation, NOTICE, {"n": number, "pad": "x" * 20_000})
        await feed.start()
        subscribing = asyncio.create_task(feed.subscribe(conversation, 0))
        await asyncio.sleep(0)  # it is reading the backlog now
        await store.call(store.events.publish, conversation, NOTICE, {"n": "new"})
        subscription = await subscribing
        received = subscription.take()
        while received[-1].data["n"] != "new":
            await asyncio.wait_for(subscription.wait(), 5)
            received += subscription.take()
    finally:
        await feed.close()
        store.close()
    assert [e.data["n"] for e in received] == [*range(1200), "new"]
