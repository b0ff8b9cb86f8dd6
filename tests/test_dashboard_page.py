"""In real headless Chromium: a customer rates the chat on the page, and the agents' dashboard
charts it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from helpline.models.scripted import ScriptedModel
from helpline.store import Store
from tests.test_web_pages import ADMIN, Harness, browser, keep_screenshot

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the module's browser, shared with the other page tests


@pytest.fixture
def harness(browser: Browser, sqlite_store: Store) -> Iterator[Harness]:
    opened = Harness(browser, sqlite_store)
    yield opened
    opened.close()


def test_a_rating_given_on_the_page_appears_on_the_dashboard(
    harness: Harness, sqlite_store: Store, tmp_path: Path
) -> None:
    url = harness.serve(
        ScriptedModel(
            ScriptedModel.text("Your order is on its way."),
            ScriptedModel.text("Thanks for getting in touch. Have a good day!"),
        )
    )
    page = harness.open_chat()
    harness.say("where is my order?")
    harness.wait_for_answer()
    expect(page.locator(".rating-card")).to_have_count(0)  # not asked mid-conversation
    expect(page.locator("#rate-chat")).to_be_visible()

    harness.say("great, thanks, bye!")
    harness.wait_for_answer()
    card = page.locator(".rating-card")
    expect(card).to_be_visible()
    expect(card.locator("button[type=submit]")).to_be_disabled()
    card.get_by_role("button", name="4: Good").click()
    card.locator("textarea").fill("Quick and friendly")
    card.locator("button[type=submit]").click()
    expect(card).to_have_text("Thanks for your rating: 4 of 5.")

    page.click("#new-chat")
    expect(page.locator("#rate-chat")).to_be_hidden()

    ratings = sqlite_store.ratings.recent()
    assert [(r.score, r.comment) for r in ratings] == [(4, "Quick and friendly")]
    sqlite_store.conversations.set_intent(ratings[0].conversation_id, "track_order")

    desk = harness.context.new_page()
    desk.goto(url + "/agents")
    expect(desk.locator("#dashboard")).to_be_hidden()  # not before signing in
    desk.fill("#admin-key", ADMIN)
    desk.press("#admin-key", "Enter")
    dashboard = desk.locator("#dashboard")
    expect(dashboard).to_be_visible()
    expect(dashboard.locator(".kpi", has_text="CSAT")).to_contain_text("4.00 / 5")
    conversations = dashboard.locator(".kpi:has(.kpi-label:text-is('Conversations')) .kpi-value")
    expect(conversations).to_have_text("1")
    csat = dashboard.locator("figure", has_text="CSAT").locator("svg")
    expect(csat).to_have_attribute(
        "aria-label", "Ratings: 0 gave 1★, 0 gave 2★, 0 gave 3★, 1 gave 4★, 0 gave 5★"
    )
    expect(csat.locator("rect.bar")).to_have_count(5)
    expect(dashboard.locator(".recent-rating")).to_contain_text("Quick and friendly")
    expect(
        dashboard.locator("figure", has_text="Conversations per day").locator("rect.resolved")
    ).to_have_count(1)
    expect(dashboard.locator("figure", has_text="Resolution")).to_contain_text("100%")
    intents = dashboard.locator("figure", has_text="Most common intents").locator("svg")
    expect(intents).to_have_attribute("aria-label", "Intents: track order 1")
    expect(intents.locator("rect.bar")).to_have_count(1)

    keep_screenshot(desk, tmp_path, "dashboard.png")

    desk.fill("#dashboard-since", "2999-01-01")
    desk.dispatch_event("#dashboard-since", "change")
    expect(dashboard.locator(".kpi", has_text="CSAT")).to_contain_text("–")
