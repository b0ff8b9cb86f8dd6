"""Token buckets kept in Redis, so every worker on every machine shares one limit.

Each check is one atomic Lua script (refill from Redis' own clock, then take a token), so
nodes with skewed clocks agree. While Redis cannot be reached the buckets of this process
stand in, with one warning per outage, and no request fails because of it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from helpline.limits import Rate
from helpline.server.ratelimit import TokenBuckets

_log = logging.getLogger("helpline.server")

# KEYS[1]: the bucket; ARGV: burst, tokens per second, 1 to take a token or 0 to look.
# Returns the seconds to wait (as text: Redis truncates Lua numbers to integers).
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1])
if tokens == nil then
  tokens = burst
else
  tokens = math.min(burst, tokens + math.max(0, now - tonumber(bucket[2])) * rate)
end
if tokens < 1 then
  return tostring((1 - tokens) / rate)
end
if take then
  tokens = tokens - 1
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return '0'
"""

RETRY_AFTER_S = 5.0
"""How long after a failure the buckets of this process stand in before Redis is tried again."""


def connect(url: str) -> redis.Redis:
    """A client with short timeouts: a limit check must never hold a request up for long."""
    return redis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
    )


class RedisHealth:
    """Whether Redis answers, shared by a process's limiters: one warning per outage."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._down_until = 0.0
        self._warned = False
        self._lock = threading.Lock()

    def usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, error: Exception) -> None:
        with self._lock:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            if not self._warned:
                self._warned = True
                _log.warning(
                    "Redis at %s does not answer (%s: %s); rate limits are per process until "
                    "it does.",
                    _safe(self.url),
                    type(error).__name__,
                    error,
                )

    def answered(self) -> None:
        if self._warned:
            with self._lock:
                if self._warned:
                    self._warned = False
                    _log.info("Redis at %s answers again; rate limits are shared.", _safe(self.url))


class SharedTokenBuckets(TokenBuckets):
    """:class:`TokenBuckets` kept in Redis under ``prefix``; in memory while Redis is away."""

    def __init__(
        self, rate: Rate, client: redis.Redis, health: RedisHealth, prefix: str, name: str
    ) -> None:
        super().__init__(rate)
        self._client = client
        self._health = health
        self._prefix = f"{prefix}ratelimit:{name}:"
        self._script: Any = client.register_script(_TAKE)

    def take(self, key: str, now: float | None = None) -> float:
        return self._check(key, take=True, now=now)

    def wait(self, key: str, now: float | None = None) -> float:
        return self._check(key, take=False, now=now)

    def _check(self, key: str, *, take: bool, now: float | None) -> float:
        if self._health.usable():
            args = (self.rate.burst, self.rate.per_second, 1 if take else 0)
            try:
                wait = float(self._script(keys=[self._prefix + key], args=args))
            except redis.RedisError as error:
                self._health.failed(error)
            else:
                self._health.answered()
                return wait
        return super().take(key, now) if take else super().wait(key, now)


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
