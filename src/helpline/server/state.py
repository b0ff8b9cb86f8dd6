"""What the routes share: the engine, the settings and the rate limiters."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from fastapi import Request

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.server.ratelimit import RateLimits, TokenBuckets, enforce
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
    known: KnownConversations = field(default_factory=KnownConversations)

    def __post_init__(self) -> None:
        self.per_client = TokenBuckets(self.limits.per_client)
        self.per_conversation = TokenBuckets(self.limits.per_conversation)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.helpline
    return state


# Dependencies are ``async def`` although they never wait: FastAPI runs a plain function
# dependency on a worker thread, and under load each such hop waits for the GIL.


async def server_state(request: Request) -> ServerState:
    """Dependency: the server's shared state."""
    return state_of(request)


async def limit_client(request: Request) -> None:
    """Dependency: every API request counts against its client address's bucket."""
    address = request.client.host if request.client else "unknown"
    enforce(state_of(request).per_client, address, "requests from your address")
