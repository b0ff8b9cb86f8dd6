"""Rate limits in Redis: one limit for every process, and per-process limits while Redis is
away, with one warning and no failed request."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from helpline.assistant import Assistant
from helpline.cli import app as cli
from helpline.config import ConfigError, Settings
from helpline.limits import Rate, RateLimits, parse_rate_limits
from helpline.models.scripted import ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from tests.nodes import ADMIN, SHARED_REDIS, nodes, own_redis, redis_prefix


def test_limits_are_read_as_burst_and_refill_per_second() -> None:
    assert parse_rate_limits("client=30:2, auth=3:0.05") == RateLimits(
        per_client=Rate(30, 2), failed_auth=Rate(3, 0.05)
    )
    assert parse_rate_limits("") == RateLimits()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("client=120", "write burst:per_second"),
        ("client=0:4", "a burst from 1 to 1,000,000"),
        ("client=1e9:4", "a burst from 1 to 1,000,000"),
        ("conversation=6:0", "a refill of at least 0.000001"),
        ("conversation=6:nan", "a refill of at least 0.000001"),
        ("auth=10:1e-320", "a refill of at least 0.000001"),  # an endless wait, not a 500
        ("clients=1:1", "for the names client, conversation, auth"),
        ("client=1:1,client=2:2", "sets 'client' twice"),
    ],
)
def test_a_bad_limit_is_refused_saying_what_to_write(value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Settings(rate_limits=value)


def test_a_redis_address_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="write it as a URL, such as redis://"):
        Settings(redis_url="127.0.0.1:6379")


def test_serve_refuses_bad_limits_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", "--rate-limits", "client=lots", "--database-url", f"sqlite:///{tmp_path}/h.db"],
    )
    assert result.exit_code == 1
    assert "--rate-limits" in result.output and "sets client to 'lots'" in result.output


def new_conversation(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url + "/api/conversations", headers=headers)


def test_two_processes_share_one_limit_per_client(sqlite_store: Store, tmp_path: Path) -> None:
    env = {"HELPLINE_REDIS_URL": SHARED_REDIS, "HELPLINE_REDIS_PREFIX": redis_prefix()}
    database = sqlite_store.engine.url.render_as_string(hide_password=False)
    with nodes(tmp_path, database, env, 2, "--rate-limits", "client=6:0.01") as (first, second):
        answers = [new_conversation(node.url).status_code for node in (first, second) * 4]
        assert answers == [201] * 6 + [429] * 2  # six in all, whichever node was asked
        refused = new_conversation(first.url)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 1
        assert "Too many requests from your address" in refused.json()["error"]["message"]
        # A client the proxy (loopback, trusted by default) names has its own bucket.
        other = new_conversation(second.url, **{"X-Forwarded-For": "203.0.113.9"})
        assert other.status_code == 201


def test_failed_sign_ins_count_on_every_process(sqlite_store: Store) -> None:
    prefix = redis_prefix()
    settings = Settings(admin_key=ADMIN, redis_url=SHARED_REDIS, redis_prefix=prefix)
    limits = RateLimits(failed_auth=Rate(burst=3, per_second=0.01))
    servers = [
        LiveServer(create_app(Assistant(ScriptedModel(), sqlite_store, [], ""), settings, limits=limits))
        for _ in range(2)
    ]  # fmt: skip
    for server in servers:
        server.start()
    try:
        wrong = {"Authorization": "Bearer not-the-key"}
        tries = [
            httpx.get(f"{server.url}/api/tickets", headers=wrong).status_code
            for server in servers * 2
        ]
        assert tries == [403, 403, 403, 429]
        right = {"Authorization": f"Bearer {ADMIN}"}
        assert httpx.get(f"{servers[0].url}/api/tickets", headers=right).status_code == 429
    finally:
        for server in servers:
            server.stop()


def test_when_redis_goes_away_limits_stay_per_process_with_one_warning(
    sqlite_store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limits = RateLimits(per_client=Rate(burst=4, per_second=0.01))
    with own_redis(tmp_path) as (url, redis_process):
        settings = Settings(admin_key=ADMIN, redis_url=url, redis_prefix=redis_prefix())
        assistant = Assistant(ScriptedModel(), sqlite_store, [], "")
        with (
            LiveServer(create_app(assistant, settings, limits=limits)) as first,
            LiveServer(create_app(assistant, settings, limits=limits)) as second,
        ):
            shared = [new_conversation(s.url).status_code for s in (first, second, first)]
            assert shared == [201, 201, 201]

            redis_process.kill()
            redis_process.wait(10)
            with caplog.at_level(logging.WARNING, logger="helpline.server"):
                # Each process now has its own bucket of 4: nothing fails, nothing is a 500.
                alone = [new_conversation(s.url).status_code for s in (first, second) * 5]
            assert alone == [201, 201] * 4 + [429, 429]
            warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
            assert len(warnings) == 2  # one from each server, not one per request
            assert "rate limits are per process" in warnings[0].getMessage()


def test_forwarded_addresses_count_only_from_trusted_proxies(
    sqlite_store: Store, tmp_path: Path
) -> None:
    database = sqlite_store.engine.url.render_as_string(hide_password=False)
    flags = ("--rate-limits", "client=2:0.01", "--forwarded-allow-ips", "192.0.2.1")
    with nodes(tmp_path, database, {}, 1, *flags) as (node,):
        # Loopback is not the trusted proxy here: each claimed address is the same client.
        claimed = [
            new_conversation(node.url, **{"X-Forwarded-For": f"203.0.113.{n}"}).status_code
            for n in range(3)
        ]
    assert claimed == [201, 201, 429]
