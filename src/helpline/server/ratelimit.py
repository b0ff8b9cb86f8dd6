"""Token buckets: per client address, per conversation, and for failed sign-ins.

Without Redis the buckets live in each worker process, so with ``--workers N`` a client gets
up to N times the rate; with ``HELPLINE_REDIS_URL`` they are shared by every worker and
machine (:mod:`helpline.server.limits_redis`).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from helpline.limits import Rate, RateLimits, parse_rate_limits
from helpline.server.errors import ApiError

if TYPE_CHECKING:
    from helpline.config import Settings

__all__ = ["Rate", "RateLimits", "TokenBuckets", "enforce", "refuse_while_empty"]

DEFAULT_REDIS_PREFIX = "helpline:"


def limits_from(settings: Settings) -> RateLimits:
    """The limits the settings name (``HELPLINE_RATE_LIMITS`` or ``--rate-limits``)."""
    return parse_rate_limits(settings.rate_limits) if settings.rate_limits else RateLimits()


def buckets_for(
    limits: RateLimits, settings: Settings
) -> tuple[TokenBuckets, TokenBuckets, TokenBuckets]:
    """Per client, per conversation and failed sign-ins: in Redis when it is configured."""
    if not settings.redis_url:
        rates = (limits.per_client, limits.per_conversation, limits.failed_auth)
        return tuple(TokenBuckets(rate) for rate in rates)  # type: ignore[return-value]
    from helpline.server.limits_redis import RedisHealth, SharedTokenBuckets, connect

    client, health = connect(settings.redis_url), RedisHealth(settings.redis_url)
    prefix = settings.redis_prefix or DEFAULT_REDIS_PREFIX
    return (
        SharedTokenBuckets(limits.per_client, client, health, prefix, "client"),
        SharedTokenBuckets(limits.per_conversation, client, health, prefix, "conversation"),
        SharedTokenBuckets(limits.failed_auth, client, health, prefix, "auth"),
    )


class TokenBuckets:
    """One bucket per key; full buckets are forgotten so memory stays bounded."""

    def __init__(self, rate: Rate, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens(key, now)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate.per_second
        if len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = (tokens - 1, now)
        return 0.0

    def wait(self, key: str, now: float | None = None) -> float:
        """The seconds until ``key`` has a token (0 when it has one now), taking none."""
        now = time.monotonic() if now is None else now
        return max(0.0, (1 - self._tokens(key, now)) / self.rate.per_second)

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.rate.burst, now))
        return min(self.rate.burst, tokens + (now - last) * self.rate.per_second)

    def _forget_full(self, now: float) -> None:
        rate = self.rate
        self._buckets = {
            key: (tokens, last)
            for key, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * rate.per_second < rate.burst
        }
        if len(self._buckets) >= self.max_keys:  # a flood of fresh keys: keep the newest half
            recent = list(self._buckets.items())[-(self.max_keys // 2) :]
            self._buckets = dict(recent)


def enforce(buckets: TokenBuckets, key: str, what: str) -> None:
    """Raise a 429 with ``Retry-After`` when ``key`` is over its rate."""
    _refuse_for(buckets.take(key), what)


def refuse_while_empty(buckets: TokenBuckets, key: str, what: str) -> None:
    """Raise a 429 with ``Retry-After`` while ``key``'s bucket is empty; takes no token."""
    _refuse_for(buckets.wait(key), what)


def _refuse_for(wait: float, what: str) -> None:
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            f"Too many {what}. Wait {seconds} second{'s' if seconds > 1 else ''} and try again.",
            {"Retry-After": str(seconds)},
        )
