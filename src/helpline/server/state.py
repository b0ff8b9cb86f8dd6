"""What the routes share: the engine, the settings and the rate limiters."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.server.ratelimit import RateLimits, TokenBuckets, enforce


@dataclass
class ServerState:
    assistant: Assistant
    settings: Settings
    limits: RateLimits
    per_client: TokenBuckets = field(init=False)
    per_conversation: TokenBuckets = field(init=False)

    def __post_init__(self) -> None:
        self.per_client = TokenBuckets(self.limits.per_client)
        self.per_conversation = TokenBuckets(self.limits.per_conversation)


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.helpline
    return state


def limit_client(request: Request) -> None:
    """Dependency: every API request counts against its client address's bucket."""
    address = request.client.host if request.client else "unknown"
    enforce(server_state(request).per_client, address, "requests from your address")
