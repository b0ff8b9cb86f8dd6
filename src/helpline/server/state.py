"""What the routes share: the engine, the settings and the rate limiters."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from fastapi import Request

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.server.errors import ApiError
from helpline.server.ratelimit import (
    RateLimits,
    TokenBuckets,
    buckets_for,
    enforce,
    refuse_while_empty,
)
from helpline.store import ConversationInfo


class KnownConversations:
    """The most recently used conversations' ids and token hashes, which never change, so a
    customer's next message is authorised without asking the database."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, ConversationInfo] = OrderedDict()

    def get(self, conversation_id: str) -> ConversationInfo | None:
        info = self._entries.get(conversation_id)
        if info is not None:
            self._entries.move_to_end(conversation_id)
        return info

    def forget(self, conversation_id: str) -> None:
        self._entries.pop(conversation_id, None)

    def remember(self, info: ConversationInfo) -> None:
        self._entries[info.id] = info
        self._entries.move_to_end(info.id)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


@dataclass
class ServerState:
    assistant: Assistant
    settings: Settings
    limits: RateLimits
    per_client: TokenBuckets = field(init=False)
    per_conversation: TokenBuckets = field(init=False)
    failed_auth: TokenBuckets = field(init=False)
    known: KnownConversations = field(default_factory=KnownConversations)

    def __post_init__(self) -> None:
        buckets = buckets_for(self.limits, self.settings)  # in Redis when it is configured
        self.per_client, self.per_conversation, self.failed_auth = buckets


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.helpline
    return state


# Dependencies are ``async def`` although they never wait: FastAPI runs a plain function
# dependency on a worker thread, and under load each such hop waits for the GIL.


async def server_state(request: Request) -> ServerState:
    """Dependency: the server's shared state."""
    return state_of(request)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_client(request: Request) -> None:
    """Dependency: every API request counts against its client address's bucket."""
    enforce(state_of(request).per_client, client_address(request), "requests from your address")


@contextmanager
def limiting_failed_auth(request: Request) -> Iterator[None]:
    """Around a credential check: an address whose failures emptied its bucket gets a 429
    (even with the right key, so a guess learns nothing), and a 401/403 takes a token."""
    buckets, address = state_of(request).failed_auth, client_address(request)
    refuse_while_empty(buckets, address, "failed sign-ins from your address")
    try:
        yield
    except ApiError as refusal:
        if refusal.status in (401, 403):
            buckets.take(address)
        raise
