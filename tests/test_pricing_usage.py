"""What each turn costs: the price table, usage from both API styles, and where cost is shown."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from helpline.assistant import Assistant
from helpline.config import ConfigError, Settings
from helpline.events import TurnDone
from helpline.messages import UserMessage
from helpline.models.base import Usage
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.openai_responses import ResponsesModel
from helpline.models.scripted import ScriptedModel
from helpline.pricing import ModelCatalog, format_cost
from helpline.server import create_app
from helpline.server.testing import LiveServer, parse_sse
from helpline.store import Store
from helpline.support.tickets import create_customer_ticket
from tests.fake_openai import FakeOpenAI, text_reply, tool_call_reply
from tests.fake_responses import FakeResponses

ADMIN = "desk-key-for-costs"
CATALOG = ModelCatalog.load()


def test_cost_counts_cached_prompt_reasoning_and_long_prompts() -> None:
    # xAI counts reasoning outside the completion: its total is larger than the two.
    xai = Usage(10_000, 500, 10_800, reasoning_tokens=300, cached_prompt_tokens=8_000)
    assert CATALOG.cost_usd("grok-4.3", xai) == pytest.approx(
        (2_000 * 1.25 + 8_000 * 0.20 + 800 * 2.50) / 1e6
    )
    # OpenAI counts reasoning inside the completion.
    openai = Usage(10_000, 800, 10_800, reasoning_tokens=300, cached_prompt_tokens=8_000)
    assert CATALOG.cost_usd("gpt-4.1", openai) == pytest.approx(
        (2_000 * 2.00 + 8_000 * 0.50 + 800 * 8.00) / 1e6
    )
    # A prompt of 200k tokens or more bills every token of the request at the long rates.
    long = Usage(250_000, 1_000, cached_prompt_tokens=50_000)
    assert CATALOG.cost_usd("grok-4.3", long) == pytest.approx(
        (200_000 * 2.50 + 50_000 * 0.40 + 1_000 * 5.00) / 1e6
    )
    assert CATALOG.cost_usd("grok-4.3", Usage(199_999, 0)) == pytest.approx(199_999 * 1.25 / 1e6)
    assert format_cost(0.0013) == "$0.0013" and format_cost(12.5) == "$12.50"
    assert format_cost(None) == "cost unknown"


def test_models_are_found_by_name_alias_snapshot_and_provider_prefix() -> None:
    found = {
        name: (entry.name if (entry := CATALOG.find(name)) else None)
        for name in (
            "grok-4.3",
            "GROK-4.3",
            "xai/grok-4.3",
            "grok-4.20",
            "grok-4",  # retired: served by grok-4.3, billed at its rates
            "gpt-4.1-mini-2025-04-14",
            "gpt-4.1-2025-04-14",
            "llama3:8b",
        )
    }
    assert found == {
        "grok-4.3": "grok-4.3",
        "GROK-4.3": "grok-4.3",
        "xai/grok-4.3": "grok-4.3",
        "grok-4.20": "grok-4.20-0309-reasoning",
        "grok-4": "grok-4-0709",
        "gpt-4.1-mini-2025-04-14": "gpt-4.1-mini",
        "gpt-4.1-2025-04-14": "gpt-4.1",
        "llama3:8b": None,
    }
    assert CATALOG.cost_usd("grok-4", Usage(100_000, 0)) == pytest.approx(0.125)
    assert CATALOG.cost_usd("llama3:8b", Usage(10, 10)) is None
    assert CATALOG.context_tokens("grok-4.3") == 1_000_000


def test_a_prices_file_overrides_and_adds_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '["grok-4.3"]\ninput = 1.00\n\n'
        '["house-model"]\naliases = ["house"]\ninput = 0.50\noutput = 1.00\ncontext_tokens = 64_000\n'
    )
    monkeypatch.setenv("HELPLINE_PRICES", str(prices))
    monkeypatch.setenv("HELPLINE_CONTEXT_TOKENS", "50000")
    settings = Settings.from_env(env_file=None)
    assert (settings.prices_file, settings.context_tokens) == (str(prices), 50_000)
    catalog = ModelCatalog.load(settings.prices_file)
    grok = catalog.find("grok-4.3")
    assert grok is not None and grok.prices is not None
    assert (grok.prices.input, grok.prices.cached_input, grok.prices.output) == (1.0, 0.2, 2.5)
    assert catalog.cost_usd("house", Usage(1_000_000, 1_000_000)) == pytest.approx(1.5)
    assert catalog.context_tokens("house-model-v2") == 64_000
    monkeypatch.setenv("HELPLINE_CONTEXT_TOKENS", "lots")
    with pytest.raises(ConfigError, match="HELPLINE_CONTEXT_TOKENS is 'lots'"):
        Settings.from_env(env_file=None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "cannot be read"),
        ("[grok", "is not valid TOML"),
        ('["m"]\ninput = -1\noutput = 1', "it must be a number of at least 0"),
        ('["m"]\ninput = 1', "needs both input and output prices"),
        ('["m"]\ninput = 1\noutput = 1\nprice = 3', "unknown keys price"),
        ("m = 3", "must be a table"),
    ],
)
def test_a_bad_prices_file_says_what_is_wrong(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "prices.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match="HELPLINE_PRICES") as error:
        ModelCatalog.load(path)
    assert message in str(error.value)


CHAT_USAGE = {
    "prompt_tokens": 2_000,
    "completion_tokens": 100,
    "total_tokens": 2_150,
    "prompt_tokens_details": {"cached_tokens": 1_500},
    "completion_tokens_details": {"reasoning_tokens": 50},
}
RESPONSES_USAGE = {
    "input_tokens": 2_000,
    "input_tokens_details": {"cached_tokens": 1_500},
    "output_tokens": 150,
    "output_tokens_details": {"reasoning_tokens": 50},
    "total_tokens": 2_150,
}
EXPECTED_COST = (500 * 1.25 + 1_500 * 0.20 + 150 * 2.50) / 1e6


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("style", ["chat", "responses"])
async def test_both_api_styles_record_cached_and_reasoning_tokens_and_cost(
    style: str, sqlite_store: Store
) -> None:
    fake: FakeOpenAI | FakeResponses
    with FakeOpenAI() if style == "chat" else FakeResponses() as fake:
        usage = CHAT_USAGE if style == "chat" else RESPONSES_USAGE
        arguments = json.dumps({"name": "Omar", "issue": "Cannot log in"})
        fake.script(
            tool_call_reply([("call_1", "create_customer_ticket", arguments)]),
            text_reply("Ticket #1 is filed.", usage=usage),
        )
        model: OpenAICompatModel | ResponsesModel = (
            OpenAICompatModel(fake.base_url, "grok-4.3")
            if style == "chat"
            else ResponsesModel(fake.base_url, "grok-4.3")
        )
        assistant = Assistant(model, sqlite_store, [create_customer_ticket])
        conversation = assistant.new_conversation()
        cost_before = _metric("helpline_model_cost_usd_total", model="grok-4.3")
        cached_before = _metric(
            "helpline_model_tokens_by_model_total", model="grok-4.3", kind="cached"
        )
        try:
            turn = assistant.run_turn(conversation, UserMessage(content="I'm Omar, I can't log in"))
            events = [e async for e in turn]
        finally:
            await model.aclose()

    done = events[-1]
    assert isinstance(done, TurnDone)
    replies = sqlite_store.usage.latest(conversation)
    assert replies is not None
    assert (replies.prompt_tokens, replies.cached_tokens, replies.reasoning_tokens) == (
        2_000,
        1_500,
        50,
    )
    assert replies.cost_usd == pytest.approx(EXPECTED_COST)
    totals = sqlite_store.usage.for_conversation(conversation)
    assert totals.replies == 2  # the tool round and the answer
    assert totals.cost_usd == pytest.approx(done.cost_usd)
    data = done.data()["usage"]
    assert data["cached_tokens"] == 1_500 and data["reasoning_tokens"] == 50
    assert data["cost_usd"] == pytest.approx(totals.cost_usd) and data["cost_usd"] > EXPECTED_COST
    assert _metric("helpline_model_cost_usd_total", model="grok-4.3") - cost_before == (
        pytest.approx(done.cost_usd)
    )
    cached = _metric("helpline_model_tokens_by_model_total", model="grok-4.3", kind="cached")
    assert cached - cached_before == 1_500


async def test_parallel_turns_record_every_reply_and_its_cost(store: Store) -> None:
    """Twelve conversations answered at once (two model replies each) on one database."""
    arguments = {"name": "Lena", "issue": "Card declined"}
    replies = [r for _ in range(12) for r in (ScriptedModel.call("create_customer_ticket", **arguments), ScriptedModel.text("Filed for you."))]  # fmt: skip
    model = ScriptedModel(*replies)
    assistant = Assistant(model, store, [create_customer_ticket], model_id="grok-4.3")
    conversations = [assistant.new_conversation() for _ in range(12)]

    async def one(conversation: str) -> TurnDone:
        events = [e async for e in assistant.run_turn(conversation, UserMessage(content="help"))]
        assert isinstance(events[-1], TurnDone)
        return events[-1]

    # Each conversation's turn takes the scripted replies in whatever order the turns run;
    # every reply still belongs to exactly one conversation.
    dones = await asyncio.gather(*(one(c) for c in conversations))
    per_conversation = [store.usage.for_conversation(c) for c in conversations]
    assert sum(t.replies for t in per_conversation) == 24
    for done, totals in zip(dones, per_conversation, strict=True):
        assert done.cost_usd is not None and done.cost_usd > 0
        assert totals.cost_usd == pytest.approx(done.cost_usd)
    (day,) = store.usage.by_day_and_model()
    assert store.usage.by_day_and_model(datetime(2999, 1, 1, tzinfo=UTC)) == []
    assert (day.model, day.replies) == ("grok-4.3", 24)
    assert day.cost_usd == pytest.approx(sum(d.cost_usd or 0 for d in dones))


@pytest.fixture
def env(tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    prices = tmp_path / "prices.toml"
    prices.write_text('["fake-model"]\ninput = 2.0\ncached_input = 0.5\noutput = 8.0\n')
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    return {
        **clean,
        "HELPLINE_BASE_URL": fake_openai.base_url,
        "HELPLINE_API_KEY": "test-key",
        "HELPLINE_MODEL": "fake-model",
        "HELPLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "HELPLINE_PRICES": str(prices),
        "NO_COLOR": "1",
    }


def helpline(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helpline.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_usage_and_transcript_report_tokens_and_cost(
    env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        text_reply("Hello!", usage=CHAT_USAGE), text_reply("Anything else?", usage=CHAT_USAGE)
    )
    chat = helpline(env, "chat", stdin="hi\nthanks\n")
    assert chat.returncode == 0, chat.stderr
    assert "tokens in" not in chat.stdout + chat.stderr  # no cost line in a pipe
    one = (500 * 2.0 + 1_500 * 0.5 + 150 * 8.0) / 1e6

    report = json.loads(helpline(env, "usage", "--json").stdout)
    (day,) = report["days"]
    assert day["model"] == "fake-model" and day["replies"] == 2
    assert (day["prompt_tokens"], day["cached_tokens"], day["reasoning_tokens"]) == (
        4_000,
        3_000,
        100,
    )
    assert report["total"]["cost_usd"] == pytest.approx(2 * one)
    assert report["since"] is None
    table = helpline(env, "usage").stdout
    assert "fake-model" in table and "$0.0059" in table and "4,000" in table
    bad = helpline(env, "usage", "--since", "last week")
    assert bad.returncode == 1 and "--since takes a day written as YYYY-MM-DD" in bad.stderr

    transcript = json.loads(helpline(env, "transcript", "--json").stdout)
    assert transcript["usage"]["cost_usd"] == pytest.approx(2 * one)
    assert transcript["usage"]["cached_tokens"] == 3_000
    assert transcript["left_out"] == []
    assert fake_openai.requests[-1].body["messages"] == transcript["messages"][:-1]
    assert "$0.0059" in helpline(env, "transcript").stdout


def test_chat_on_a_terminal_shows_a_dim_cost_line_per_turn(
    env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(text_reply("Hello!", usage=CHAT_USAGE))
    leader, follower = pty.openpty()
    with open(follower, "w") as terminal:
        process = subprocess.run(
            [sys.executable, "-m", "helpline.cli", "chat"],
            input=b"hi\n",
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
    os.close(leader)
    assert process.returncode == 0
    assert "2,000 tokens in (1,500 cached) · 100 out, 50 reasoning · $0.00" in (
        process.stderr.decode()
    )


@pytest.fixture
def served(sqlite_store: Store) -> Iterator[LiveServer]:
    model = ScriptedModel(
        ScriptedModel.call("create_customer_ticket", name="Omar", issue="Cannot log in"),
        ScriptedModel.text("I've filed ticket #1 for you."),
    )
    assistant = Assistant(model, sqlite_store, [create_customer_ticket], model_id="grok-4.3")
    with LiveServer(create_app(assistant, Settings(admin_key=ADMIN))) as server:
        yield server


def test_the_done_event_and_the_agents_api_carry_cost(served: LiveServer) -> None:
    created = httpx.post(served.url + "/api/conversations").json()
    answer = httpx.post(
        f"{served.url}/api/conversations/{created['id']}/messages",
        headers={"Authorization": f"Bearer {created['token']}"},
        json={"text": "I'm Omar and I can't log in"},
        timeout=30,
    )
    done = parse_sse(answer.text)[-1]
    assert done.event == "done"
    assert {"cached_tokens", "reasoning_tokens", "cost_usd"} <= set(done.data["usage"])
    assert done.data["usage"]["cost_usd"] > 0

    url = f"{served.url}/api/conversations/{created['id']}/usage"
    usage = httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"}).json()
    assert usage["replies"] == 2 and usage["cost_usd"] == pytest.approx(
        done.data["usage"]["cost_usd"]
    )
    assert usage["cached_tokens"] == 0 and usage["conversation_id"] == created["id"]
    assert httpx.get(url).status_code == 401
    customer = {"Authorization": f"Bearer {created['token']}"}
    assert httpx.get(url, headers=customer).status_code == 403  # not for customers
    admin = {"Authorization": f"Bearer {ADMIN}"}
    missing = httpx.get(served.url + "/api/conversations/nope/usage", headers=admin)
    assert missing.status_code == 404 and "There is no conversation" in missing.text
    assert httpx.get(served.url + "/api/conversations/%00/usage", headers=admin).status_code == 422
    metrics = httpx.get(served.url + "/metrics", headers=admin).text
    assert 'helpline_model_cost_usd_total{model="grok-4.3"}' in metrics


@pytest.mark.browser
def test_the_agents_page_shows_what_a_conversation_cost(served: LiveServer) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.test_web_pages import CHROMIUM, CHROMIUM_ARGS

    created = httpx.post(served.url + "/api/conversations").json()
    httpx.post(
        f"{served.url}/api/conversations/{created['id']}/messages",
        headers={"Authorization": f"Bearer {created['token']}"},
        json={"text": "I'm Omar and I can't log in"},
        timeout=30,
    ).raise_for_status()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(served.url + "/agents")
            page.fill("#admin-key", ADMIN)
            page.press("#admin-key", "Enter")
            page.click("#tickets button:has-text('Omar')")
            cost = page.locator("#ticket .meta .cost")
            expect(cost).to_contain_text("Model cost: $0.00")
            expect(cost).to_contain_text("tokens in (0 cached)")
        finally:
            browser.close()


def test_a_deleted_conversation_keeps_its_cost_and_forgets_its_note(store: Store) -> None:
    from helpline.store.usage import ReplyUsage

    conversation_id = store.conversations.create()
    reply = ReplyUsage("grok-4.3", 1_000, 200, 50, cost_usd=0.002, context_note="Ticket #7")
    store.usage.record(conversation_id, [reply])
    assert store.conversations.delete(conversation_id)
    assert store.usage.for_conversation(conversation_id).replies == 0
    (day,) = store.usage.by_day_and_model()
    assert (day.replies, day.prompt_tokens, day.cost_usd) == (1, 1_000, pytest.approx(0.002))
    with store.engine.connect() as connection:
        notes = connection.execute(text("SELECT context_note FROM turn_usage")).scalars().all()
    assert notes == [None]
