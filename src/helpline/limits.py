"""The server's rate limits as data, and how an operator writes them.

``HELPLINE_RATE_LIMITS="client=120:4,conversation=6:0.25,auth=10:0.1"``: each limit is a
burst (requests at once) and a refill rate (requests per second); a limit left out keeps
its default. Kept free of the web stack so the settings can check the value cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from helpline.config import ConfigError


@dataclass(frozen=True)
class Rate:
    """``burst`` requests at once, refilled at ``per_second``."""

    burst: float
    per_second: float


@dataclass(frozen=True)
class RateLimits:
    """The server's limits; the defaults suit one person typing, and a busy office behind NAT."""

    per_client: Rate = Rate(burst=120, per_second=4)
    """Every API request from one address."""
    per_conversation: Rate = Rate(burst=6, per_second=0.25)
    """Messages to one conversation."""
    failed_auth: Rate = Rate(burst=10, per_second=0.1)
    """Wrong admin keys and conversation tokens from one address: guessing stays slow."""


LIMIT_NAMES = {"client": "per_client", "conversation": "per_conversation", "auth": "failed_auth"}
"""The names operators write, and the :class:`RateLimits` field each sets."""

_EXAMPLE = "client=120:4,conversation=6:0.25,auth=10:0.1"
MAX_BURST = 1_000_000
MIN_PER_SECOND = 0.000001
"""About one request in 12 days: a slower refill is a wait no client can be told."""


def parse_rate_limits(
    text: str, setting: str = "HELPLINE_RATE_LIMITS (--rate-limits)"
) -> RateLimits:
    """The limits ``text`` names, the defaults for the rest; :class:`ConfigError` if unreadable."""
    limits = RateLimits()
    seen: set[str] = set()
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or name not in LIMIT_NAMES:
            raise ConfigError(
                f"{setting} has {part!r}; write name=burst:per_second for the names "
                f"{', '.join(LIMIT_NAMES)}, such as {_EXAMPLE!r}."
            )
        if name in seen:
            raise ConfigError(f"{setting} sets {name!r} twice; keep one of them.")
        seen.add(name)
        limits = replace(limits, **{LIMIT_NAMES[name]: _rate(name, value, setting)})
    return limits


def _rate(name: str, value: str, setting: str) -> Rate:
    burst, colon, per_second = value.partition(":")
    try:
        rate = Rate(burst=float(burst), per_second=float(per_second))
    except ValueError:
        rate = None
    if (
        rate is None
        or not colon
        or not 1 <= rate.burst <= MAX_BURST
        or not MIN_PER_SECOND <= rate.per_second < math.inf
    ):
        raise ConfigError(
            f"{setting} sets {name} to {value!r}; write burst:per_second with a burst from 1 "
            f"to {MAX_BURST:,} and a refill of at least {MIN_PER_SECOND:f} per second, such "
            f"as {name}=10:0.5."
        )
    return rate
