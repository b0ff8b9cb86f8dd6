"""Approvals on the agents' page, in real headless Chromium: an agent signed in with their own
key approves a refund (another rejects one), and the customer's open page shows the answer
without a reload, polling switched off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from helpline.app import build_assistant
from helpline.config import Settings
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from helpline.support.demo import seed_demo_orders
from tests.test_live_pages import NO_POLLING
from tests.test_web_pages import ADMIN, browser  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.browser


@dataclass
class Served:
    url: str
    store: Store
    mei: str
    """Mei Ling's agent key."""


@pytest.fixture
def served(sqlite_store: Store) -> Iterator[Served]:
    """The offline assistant with the demo orders, and an agent called Mei Ling."""
    seed_demo_orders(sqlite_store)
    _, key = sqlite_store.agents.add("Mei Ling")
    settings = Settings(admin_key=ADMIN)
    assistant = build_assistant(settings, store=sqlite_store)
    with LiveServer(create_app(assistant, settings)) as server:
        yield Served(server.url, sqlite_store, key)


@pytest.fixture
def windows(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:  # noqa: F811
    """The customer's browser and an agent's, polling switched off in both."""
    customer = browser.new_context()
    agent = browser.new_context(viewport={"width": 1200, "height": 800})
    try:
        for context in (customer, agent):
            context.add_init_script(NO_POLLING)
        yield customer, agent
    finally:
        customer.close()
        agent.close()


def _customer_asks_for_a_refund(page: Page, url: str, line: str) -> None:
    page.goto(url + "/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    with page.expect_response(lambda response: response.url.endswith("/events")):
        page.fill("#input", line)
        page.press("#input", "Enter")
    expect(page.locator(".message.assistant .bubble").last).to_contain_text(
        "awaits approval by a person", timeout=15_000
    )


def _agent_signs_in(page: Page, url: str, key: str) -> None:
    page.goto(url + "/agents")
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    page.fill("#admin-key", key)
    page.press("#admin-key", "Enter")


def test_an_agent_approves_on_the_agents_page_and_the_customer_sees_it(
    windows: tuple[BrowserContext, BrowserContext],
    served: Served,
) -> None:
    customer, agent = windows
    chat = customer.new_page()
    _customer_asks_for_a_refund(
        chat,
        served.url,
        "Order DD-10231, email omar@example.com: the Margherita Pizza arrived cold, refund it",
    )
    desk = agent.new_page()
    _agent_signs_in(desk, served.url, served.mei)
    expect(desk.locator("#signed-in-as")).to_have_text("Signed in as Mei Ling")
    card = desk.locator("#approvals .approval").first
    expect(card).to_contain_text("order DD-10231")
    expect(card).to_contain_text("Margherita Pizza")
    card.get_by_role("button", name="Approve refund").click()
    outcome = desk.locator("#approvals > .approval-status")
    expect(outcome).to_contain_text("Refund #1: Approved: €11.50 refunded.")
    expect(outcome).to_contain_text("The customer is told in their chat.")

    # the customer's page, open all along, shows the team's answer at once
    expect(chat.locator(".message.agent .bubble").last).to_contain_text(
        "has been approved by our support team", timeout=3000
    )
    order = served.store.orders.get("DD-10231")
    assert order is not None and order.refunded_cents == 1150

    # the ticket shows who did what
    desk.click("#tickets button:has-text('Omar')")
    activity = desk.locator(".desk-activity")
    expect(activity.locator(".audit-log")).to_contain_text("Mei Ling")
    expect(activity.locator(".audit-log")).to_contain_text("approved refund #1")
    expect(activity.locator(".approval.approved")).to_contain_text("Approved by Mei Ling")
    expect(desk.locator("#approvals")).to_contain_text("Nothing waits for approval.")


def test_a_rejection_on_the_page_tells_the_customer_why(
    windows: tuple[BrowserContext, BrowserContext],
    served: Served,
) -> None:
    customer, agent = windows
    chat = customer.new_page()
    _customer_asks_for_a_refund(
        chat,
        served.url,
        "Order DD-10233, email lena@example.com: the Pad Thai arrived cold, refund it",
    )
    operator = agent.new_page()
    _agent_signs_in(operator, served.url, ADMIN)  # operators see the queue, do not decide
    expect(operator.locator("#approvals .approval").first).to_contain_text(
        "Sign in with your own agent key"
    )
    operator.click("#sign-out")
    _agent_signs_in(operator, served.url, served.mei)
    card = operator.locator("#approvals .approval").first
    card.get_by_role("button", name="Reject…").click()
    card.get_by_label("Why (the customer reads this)").fill(
        "The restaurant's photo shows it left hot"
    )
    card.get_by_role("button", name="Reject refund").click()
    expect(operator.locator("#approvals > .approval-status")).to_contain_text(
        "Rejected: nothing refunded"
    )
    expect(chat.locator(".message.agent .bubble").last).to_contain_text(
        "The restaurant's photo shows it left hot.", timeout=3000
    )
    order = served.store.orders.get("DD-10233")
    assert order is not None and order.refunds == ()
