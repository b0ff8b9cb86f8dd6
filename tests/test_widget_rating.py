"""In real headless Chromium: the customer rates the chat in the widget on the business's own
site (strict CSP, shadow root), by keyboard after a goodbye or from "Rate this chat"."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from helpline.models.scripted import ScriptedModel
from helpline.store import Store
from tests.test_widget import Shop, Visit, browser, customer_token, shop, visit

pytestmark = pytest.mark.browser
__all__ = ["browser", "shop", "visit"]  # test_widget's fixtures, shared


def test_a_goodbye_brings_up_the_rating_card_which_works_by_keyboard(
    shop: Shop, visit: Visit, sqlite_store: Store
) -> None:
    shop.serve(
        ScriptedModel(
            ScriptedModel.text("Your lasagne is on its way."),
            ScriptedModel.text("Glad to help. Enjoy your meal!"),
        ),
        sqlite_store,
    )
    page = visit.open(shop.url(axe="1"))
    visit.open_chat()
    visit.say("where is my lasagne?")
    visit.wait_for_answer()
    card = page.locator(".rating-card")
    expect(card).to_have_count(0)  # not asked mid-conversation
    expect(page.locator(".rate-chat")).to_be_visible()

    visit.say("thanks, bye!")
    visit.wait_for_answer()
    expect(card).to_be_visible()
    assert card.evaluate("node => node.getRootNode() !== document")  # in the shadow root
    first = card.get_by_role("button", name="1: Poor")
    expect(first).to_be_focused()
    expect(page.locator(".rate-chat")).to_be_hidden()
    violations = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] }))
            .violations.map((v) => v.id)"""
    )
    assert violations == []
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(card.get_by_role("button", name="4: Good")).to_be_focused()
    page.keyboard.press("Enter")
    expect(card.get_by_role("button", name="4: Good")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(card.locator("textarea")).to_be_focused()
    page.keyboard.type("Quick and friendly")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(card).to_have_text("Thanks for your rating: 4 of 5.")

    ratings = sqlite_store.ratings.recent()
    assert [(r.score, r.comment) for r in ratings] == [(4, "Quick and friendly")]
    assert ratings[0].conversation_id == sqlite_store.conversations.latest_id()

    page.click("button:has-text('New chat')")  # a new conversation has nothing to rate yet
    expect(card).to_have_count(0)
    expect(page.locator(".rate-chat")).to_be_hidden()


def test_a_signed_in_customer_rates_from_rate_this_chat_in_the_sites_words(
    shop: Shop, visit: Visit, sqlite_store: Store
) -> None:
    shop.serve(ScriptedModel(ScriptedModel.text("Refunds take 5 days.")), sqlite_store)
    words = '{"rateChat": "Chat bewerten", "sendRating": "Bewertung senden"}'
    page = visit.open(shop.url(**{"customer-token": customer_token(), "strings": words}))
    visit.open_chat()
    expect(page.locator(".panel .bar p")).to_have_text("Signed in as Omar Haddad")
    expect(page.locator(".rate-chat")).to_be_hidden()  # nothing to rate yet
    visit.say("when do I get my refund?")
    visit.wait_for_answer()

    page.click("button:has-text('Chat bewerten')")
    card = page.locator(".rating-card")
    expect(card).to_have_attribute("aria-label", "Chat bewerten")
    card.get_by_role("button", name="2: Not good").click()
    card.get_by_role("button", name="Bewertung senden").click()
    expect(card).to_have_text("Thanks for your rating: 2 of 5.")

    [conversation] = sqlite_store.customers.conversations("cust-omar")
    [rating] = sqlite_store.ratings.recent()
    assert (rating.conversation_id, rating.score, rating.comment) == (conversation.id, 2, None)
