"""The pages follow the conversation live, in real headless Chromium, with polling switched
off: what the support team and the customer do shows on the other's open page within 1 s."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.models.scripted import ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from helpline.support import create_customer_ticket
from tests.test_web_pages import ADMIN, browser  # noqa: F401  (the browser fixture)
from tests.test_widget import ADMIN as WIDGET_ADMIN
from tests.test_widget import Shop, Visit

pytestmark = pytest.mark.browser

NO_POLLING = "window.setInterval = () => 0;"
"""Pages poll with setInterval; the live stream reconnects with setTimeout."""


@pytest.fixture
def url(sqlite_store: Store) -> Iterator[str]:
    model = ScriptedModel(
        ScriptedModel.call("create_customer_ticket", name="Omar", issue="Cannot log in"),
        ScriptedModel.text("I've filed ticket #1 for you."),
    )
    assistant = Assistant(model, sqlite_store, [create_customer_ticket], "You are the desk.")
    with LiveServer(create_app(assistant, Settings(admin_key=ADMIN))) as server:
        yield server.url


def test_the_customers_open_page_shows_an_agents_reply_within_a_second(
    browser: Browser,  # noqa: F811
    url: str,
) -> None:
    context = browser.new_context()
    context.add_init_script(NO_POLLING)
    chat = context.new_page()
    try:
        chat.goto(url + "/")
        expect(chat.locator("body[data-ready=true]")).to_be_attached()
        with chat.expect_response(lambda response: response.url.endswith("/events")):
            chat.fill("#input", "I'm Omar and I can't log in")
            chat.press("#input", "Enter")
        expect(chat.locator(".message.assistant .bubble").last).to_have_text(
            "I've filed ticket #1 for you.", timeout=15_000
        )
        conversation = chat.evaluate("JSON.parse(localStorage.getItem('helpline.conversation')).id")

        for text in ("Hi Omar, Ana from support here.", "Try the reset link now."):
            reply = httpx.post(
                f"{url}/api/conversations/{conversation}/replies",
                headers={"Authorization": f"Bearer {ADMIN}"},
                json={"text": text},
            )
            assert reply.status_code == 201
            sent = time.monotonic()
            expect(chat.locator(".message.agent .bubble").last).to_have_text(text, timeout=1000)
            assert time.monotonic() - sent < 1

        with chat.expect_response(lambda response: response.url.endswith("/events")):
            chat.reload()  # a reopened page follows again
        expect(chat.locator(".message.agent .bubble")).to_have_count(2)
        httpx.post(
            f"{url}/api/conversations/{conversation}/replies",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"text": "Still there?"},
        )
        expect(chat.locator(".message.agent .bubble").last).to_have_text(
            "Still there?", timeout=1000
        )
    finally:
        context.close()


def test_the_agents_open_ticket_shows_the_customers_words_within_a_second(
    browser: Browser,  # noqa: F811
    url: str,
) -> None:
    context = browser.new_context()
    context.add_init_script(NO_POLLING)
    try:
        created = httpx.post(url + "/api/conversations").json()
        customer = {"Authorization": f"Bearer {created['token']}"}
        messages = f"{url}/api/conversations/{created['id']}/messages"
        assert httpx.post(
            messages, headers=customer, json={"text": "I'm Omar, locked out"}
        ).is_success

        desk = context.new_page()
        desk.goto(url + "/agents")
        expect(desk.locator("body[data-ready=true]")).to_be_attached()
        with desk.expect_response(lambda response: response.url.endswith("/api/events")):
            desk.fill("#admin-key", ADMIN)
            desk.press("#admin-key", "Enter")
        desk.click("#tickets button:has-text('Omar')")
        desk.fill("#agent-reply", "Ana here: which email do you sign in with?")
        desk.click(".reply-form button[type=submit]")
        expect(desk.locator(".who-answers")).to_contain_text("The support team has this chat")

        assert httpx.post(messages, headers=customer, json={"text": "omar@example.com"}).is_success
        sent = time.monotonic()
        expect(desk.locator("#ticket .message.user .bubble").last).to_have_text(
            "omar@example.com", timeout=1000
        )
        assert time.monotonic() - sent < 1

        handed = httpx.patch(
            f"{url}/api/conversations/{created['id']}",
            headers={"Authorization": f"Bearer {ADMIN}"},
            json={"status": "active"},
        )
        assert handed.status_code == 200
        expect(desk.locator(".who-answers")).to_have_text(
            "The assistant answers this chat.", timeout=1000
        )
    finally:
        context.close()


def test_the_widget_on_another_site_shows_an_agents_reply_within_a_second(
    browser: Browser,  # noqa: F811
    sqlite_store: Store,
) -> None:
    shop = Shop()
    visit = Visit(browser)
    try:
        shop.serve(ScriptedModel(ScriptedModel.text("Happy to help.")), sqlite_store)
        visit.context.add_init_script(NO_POLLING)
        page = visit.open(shop.url())
        visit.open_chat()
        with page.expect_response(lambda response: response.url.endswith("/events")):
            visit.say("Hello?")
        visit.wait_for_answer()
        conversation = sqlite_store.conversations.latest_id()
        reply = httpx.post(
            f"{shop.helpline}/api/conversations/{conversation}/replies",
            headers={"Authorization": f"Bearer {WIDGET_ADMIN}"},
            json={"text": "Ana from the shop here."},
        )
        assert reply.status_code == 201
        sent = time.monotonic()
        expect(page.locator(".message.agent .bubble").last).to_have_text(
            "Ana from the shop here.", timeout=1000
        )
        assert time.monotonic() - sent < 1
        assert visit.refused == []  # the site's CSP let the stream through
    finally:
        visit.context.close()
        shop.close()
