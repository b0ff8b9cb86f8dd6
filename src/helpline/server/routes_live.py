"""Live updates as server-sent events: one stream per open page, resumable.

``GET /api/conversations/{id}/events`` (the customer's token or an agent's key) and
``GET /api/events`` (agents: every conversation). Each event's SSE ``id`` is its row id, so a
page that reconnects with ``Last-Event-ID`` gets exactly what it missed, from any node.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from helpline.config import Settings
from helpline.live import LiveFeed, Subscription
from helpline.live.wakeups import wakeup_for
from helpline.server.auth import bearer
from helpline.server.desk_auth import desk_agent
from helpline.server.errors import ApiError
from helpline.server.routes_conversations import authorise_conversation
from helpline.server.sse import frame
from helpline.server.state import ServerState, limit_client, server_state
from helpline.store import ConversationEvent, Store
from helpline.store.agents import is_agent_key

_log = logging.getLogger("helpline.live")

router = APIRouter(prefix="/api", tags=["live updates"], dependencies=[Depends(limit_client)])

KEEPALIVE_S = 15.0
"""A comment line this often keeps proxies from closing a quiet stream."""
RECONNECT_MS = 1000
"""How soon a page reconnects after its stream broke (the SSE ``retry`` field)."""
AGENT_RECHECK_S = 1.0
"""How long an agent's key, once checked, is trusted before events go out on its stream
again: a removed agent's open stream ends before the next event after that."""

_ID_SHAPE = r"^[A-Za-z0-9_-]{1,64}$"
ConversationId = Annotated[str, Path(pattern=_ID_SHAPE, description="The conversation's id.")]
State = Annotated[ServerState, Depends(server_state)]

_EVENTS_RESPONSE = {
    200: {
        "description": (
            "Server-sent events, each with its `id`: `ready` {last_event_id} first, then "
            "`agent_reply` {message_id, text, status}, `status` {status}, `notice` "
            "{message_id, text}, `approval` {…}; every one also carries conversation_id and "
            "at. Send the last id seen as `Last-Event-ID` to resume."
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def install(app: FastAPI, store: Store, settings: Settings) -> None:
    """Serve the live routes from ``app``, with this process's feed of ``store``'s events."""
    app.state.live = LiveFeed(store, wakeup_for(store, settings))
    app.include_router(router)


async def start(app: FastAPI) -> None:
    """Start this process's feed (it tells the others of this one's events too), and end the
    open streams as soon as the server is told to stop, so it need not wait for them and
    pages reconnect (to another node) with what they have seen."""
    feed: LiveFeed = app.state.live
    try:
        await feed.start()
    except Exception:  # the database is away: the first page to open a stream starts it
        _log.exception("Live updates could not start yet; they start with the first stream")
    if threading.current_thread() is not threading.main_thread():
        return  # signals reach the main thread only; a server in a thread is stopped directly
    for number in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(number)
        if callable(previous):
            signal.signal(number, _then(feed.end_streams_soon, previous))


def _then(first: Callable[[], None], handler: Callable[[int, Any], Any]) -> Any:
    def handle(number: int, frame: Any) -> None:
        first()
        handler(number, frame)

    return handle


async def close(app: FastAPI) -> None:
    """End the open streams and stop the feed (the server is shutting down)."""
    feed: LiveFeed | None = getattr(app.state, "live", None)
    if feed is not None:
        await feed.close()


@router.get(
    "/conversations/{conversation_id}/events",
    response_class=Response,
    responses=_EVENTS_RESPONSE,  # type: ignore[arg-type]
)
async def conversation_events(
    conversation_id: ConversationId, request: Request, state: State
) -> Response:
    """What happens in this conversation from now on (or after `Last-Event-ID`): the support
    team's replies, who answers it, the desk's notices and decisions."""
    await authorise_conversation(state, request, conversation_id)  # as its other routes
    return await _stream(request, state, conversation_id)


@router.get("/events", response_class=Response, responses=_EVENTS_RESPONSE)  # type: ignore[arg-type]
async def all_events(request: Request, state: State) -> Response:
    """What happens in every conversation (an agent's key or the admin key): for the agents'
    page."""
    await desk_agent(request)
    return await _stream(request, state, None)


async def _stream(request: Request, state: ServerState, conversation_id: str | None) -> Response:
    feed: LiveFeed = request.app.state.live
    subscription = await feed.subscribe(conversation_id, _last_event_id(request))
    return LiveStream(feed, subscription, _agent_still_known(state, bearer(request)))


def _agent_still_known(state: ServerState, credential: str) -> Callable[[], Awaitable[bool]]:
    """Whether the agent whose key opened a stream still has it (the admin key and customer
    tokens stay valid as long as the stream: always true)."""
    store = state.assistant.store

    async def known() -> bool:
        return not is_agent_key(credential) or (
            await store.call(store.agents.by_key, credential) is not None
        )

    return known


def _last_event_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id", "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{1,18}", value):
        raise ApiError(
            400,
            "Last-Event-ID must be the id of an event this stream sent (a whole number). "
            "Leave it out to start from now.",
        )
    return int(value)


class LiveStream(Response):
    """The subscription's events as ``text/event-stream`` until the page or the server goes."""

    media_type = "text/event-stream"

    def __init__(
        self,
        feed: LiveFeed,
        subscription: Subscription,
        still_allowed: Callable[[], Awaitable[bool]],
    ) -> None:
        self.feed = feed
        self.subscription = subscription
        self.still_allowed = still_allowed
        self._checked_at = time.monotonic()  # the request's own check
        self.status_code = 200
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        subscription = self.subscription
        left = asyncio.ensure_future(_client_leaves(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            ready = {"last_event_id": subscription.after}  # the events after it follow
            opening = b"retry: %d\n" % RECONNECT_MS + _with_id(subscription.after, "ready", ready)
            await _body(send, opening + b"".join(_encode(e) for e in subscription.take()))
            while not subscription.closed:
                arrived = asyncio.ensure_future(subscription.wait())
                done, _ = await asyncio.wait(
                    {arrived, left}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if left in done:
                    arrived.cancel()
                    return
                if arrived not in done:
                    arrived.cancel()
                    await _body(send, b": keepalive\n\n")
                    continue
                events = subscription.take()
                if events:
                    if not await self._allowed():
                        break  # the page reconnects, and is refused
                    await _body(send, b"".join(_encode(event) for event in events))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client left
        finally:
            left.cancel()
            self.feed.unsubscribe(subscription)

    async def _allowed(self) -> bool:
        """Whether the credential still opens the stream, checked again once it is older
        than ``AGENT_RECHECK_S``."""
        if time.monotonic() - self._checked_at < AGENT_RECHECK_S:
            return True
        if not await self.still_allowed():
            return False
        self._checked_at = time.monotonic()
        return True


async def _client_leaves(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


def _encode(event: ConversationEvent) -> bytes:
    return _with_id(event.id, event.kind, event.payload())


def _with_id(event_id: int, name: str, data: dict[str, Any]) -> bytes:
    return b"id: %d\n" % event_id + frame(name, data)
