"""The chat page and the agents' page in real headless Chromium, against a live server."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright

from helpline.assistant import WITH_AGENT_REPLY, Assistant
from helpline.config import Settings
from helpline.models.base import ChatModel
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.scripted import Reply, ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from helpline.support import create_customer_ticket
from helpline.support.receipts import analyze_receipt_image
from tests.conftest import SHOP_RECEIPT
from tests.fake_openai import FakeOpenAI, text_reply

pytestmark = pytest.mark.browser

ADMIN = "agents-only-key"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = os.environ.get("HELPLINE_SCREENSHOTS_DIR")
"""Set (e.g. to ``docs``) to keep the pages' screenshots for the README."""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Harness:
    """A live server over ``sqlite_store`` and a fresh browser page that records dialogs."""

    def __init__(self, browser: Browser, store: Store) -> None:
        self.browser = browser
        self.store = store
        self.server: LiveServer | None = None
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1100, "height": 760})
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def serve(self, model: ChatModel) -> str:
        tools = [create_customer_ticket, analyze_receipt_image]
        assistant = Assistant(model, self.store, tools, "You are the test support desk.")
        self.server = LiveServer(create_app(assistant, Settings(admin_key=ADMIN)))
        self.server.start()
        return self.server.url

    def open_chat(self) -> Page:
        assert self.server is not None
        self.page.goto(self.server.url + "/")
        expect(self.page.locator("body[data-ready=true]")).to_be_attached()
        return self.page

    def say(self, text: str) -> None:
        self.page.fill("#input", text)
        self.page.press("#input", "Enter")

    def wait_for_answer(self) -> None:
        expect(self.page.locator(".message.assistant[aria-busy=true]")).to_have_count(
            0, timeout=30_000
        )
        expect(self.page.locator("#send")).to_be_enabled()

    def close(self) -> None:
        self.context.close()
        if self.server:
            self.server.stop()


@pytest.fixture
def harness(browser: Browser, sqlite_store: Store) -> Iterator[Harness]:
    opened = Harness(browser, sqlite_store)
    yield opened
    opened.close()


def keep_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    if SCREENSHOTS:
        shutil.copy(path, Path(SCREENSHOTS) / name)


def wait_until_image_loaded(page: Page, selector: str) -> None:
    """Poll from Python: the page's CSP (rightly) forbids the eval that wait_for_function uses."""
    deadline = time.monotonic() + 10
    script = f"document.querySelector({json.dumps(selector)})?.naturalWidth ?? 0"
    while page.evaluate(script) == 0:
        assert time.monotonic() < deadline, f"{selector} never loaded"
        time.sleep(0.05)


def test_answer_streams_in_and_survives_a_reload(harness: Harness, fake_openai: FakeOpenAI) -> None:
    answer = "Sorry to hear that! Your **order 1042** is on its way and should arrive in about *ten minutes*."
    fake_openai.script(text_reply(answer, delay=0.12))
    harness.serve(OpenAICompatModel(fake_openai.base_url, "fake-model", "test", max_retries=0))
    page = harness.open_chat()
    harness.say("Where is my order?")

    bubble = page.locator(".message.assistant .bubble").last
    expect(bubble).to_be_visible()
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while (
        page.locator(".message.assistant[aria-busy=true]").count() and time.monotonic() < deadline
    ):
        text = bubble.text_content() or ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        time.sleep(0.03)
    final = (
        "Sorry to hear that! Your order 1042 is on its way and should arrive in about ten minutes."
    )
    expect(bubble).to_have_text(final)
    assert len(seen) >= 4, f"the answer did not stream in progressively: {seen}"
    assert all(final.startswith(partial.rstrip("*")) or "*" in partial for partial in seen[:-1])
    expect(bubble.locator("strong")).to_have_text("order 1042")
    expect(bubble.locator("em")).to_have_text("ten minutes")
    expect(page.locator(".message.user .bubble")).to_have_text("Where is my order?")

    page.reload()
    expect(page.locator("body[data-ready=true]")).to_be_attached()
    expect(page.locator(".message.user .bubble")).to_have_text("Where is my order?")
    expect(page.locator(".message.assistant .bubble")).to_have_text(final)
    expect(page.locator("#welcome")).to_be_hidden()


def test_receipt_upload_shows_the_tool_at_work(harness: Harness, tmp_path: Path) -> None:
    def read_the_shared_image(messages: list[dict[str, Any]]) -> Reply:
        last = messages[-1]["content"]
        reference = last[last.index("image://") : last.index("]", last.index("image://"))]
        return ScriptedModel.call("analyze_receipt_image", image_url=reference)

    def summarise(messages: list[dict[str, Any]]) -> Reply:
        receipt = json.loads(messages[-1]["content"])
        total = receipt["total_in_cents"] / 100
        return ScriptedModel.text(
            f"Thanks! I read your receipt from **{receipt['date']}**: the total is "
            f"{total:.2f} {receipt['currency']}. Which item was wrong?"
        )

    harness.serve(ScriptedModel(read_the_shared_image, summarise))
    page = harness.open_chat()
    with page.expect_file_chooser() as chooser:
        page.click("#attach")
    chooser.value.set_files(str(SHOP_RECEIPT))
    expect(page.locator("#attachment")).to_be_visible()
    expect(page.locator("#attachment-name")).to_have_text(SHOP_RECEIPT.name)
    harness.say("I was charged for something I never ordered")

    tool = page.locator(".message.assistant .tool")
    expect(tool).to_be_visible()
    expect(tool.locator(".label")).not_to_have_text("")
    harness.wait_for_answer()
    expect(tool).to_have_class("tool finished")
    expect(tool.locator(".label")).to_have_text("Receipt read")
    expect(page.locator(".message.assistant .bubble")).to_contain_text(
        "I read your receipt from 2018-12-25"
    )
    expect(page.locator(".message.user img")).to_be_visible()
    wait_until_image_loaded(page, ".message.user img")
    expect(page.locator("#attachment")).to_be_hidden()

    page.reload()  # the shared image comes back from the server, with the conversation's token
    expect(page.locator(".message.user img")).to_be_visible()
    wait_until_image_loaded(page, ".message.user img")
    expect(page.locator(".tool.finished .label")).to_have_text("Receipt read")
    keep_screenshot(page, tmp_path, "chat.png")


def test_the_chat_page_fits_a_phone(harness: Harness, tmp_path: Path) -> None:
    harness.serve(
        ScriptedModel(
            ScriptedModel.text(
                "Sorry about that! **Refunds** go back to your card within 5 to 10 working days."
            )
        )
    )
    page = harness.open_chat()
    page.set_viewport_size({"width": 390, "height": 844})
    harness.say("When will my refund for order DD-10231 arrive? It has been a week already.")
    harness.wait_for_answer()
    expect(page.locator("#input")).to_be_in_viewport()
    expect(page.locator("#send")).to_be_in_viewport()
    expect(page.locator(".message.assistant .bubble strong")).to_have_text("Refunds")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing sticks out sideways
    keep_screenshot(page, tmp_path, "phone.png")


XSS = (
    'Here you go: <img src=x onerror="window.pwned=1;alert(1)"> '
    "<script>window.pwned=2;alert(2)</script> "
    "[click me](javascript:alert(3)) [data](data:text/html,<script>alert(4)</script>) "
    "[help centre](https://help.example.com/refunds) and **<b>bold</b>**"
)


def test_markup_from_the_model_or_the_customer_stays_inert(harness: Harness) -> None:
    harness.serve(ScriptedModel(ScriptedModel.text(XSS)))
    page = harness.open_chat()
    harness.say('<img src=x onerror="window.pwned=3;alert(5)"> hello')
    harness.wait_for_answer()

    def assert_inert() -> None:
        log = page.locator("#log")
        expect(log.locator("img")).to_have_count(0)
        expect(log.locator("script, b, iframe, object")).to_have_count(0)
        anchors = log.locator("a")
        expect(anchors).to_have_count(1)
        expect(anchors).to_have_attribute("href", "https://help.example.com/refunds")
        expect(anchors).to_have_attribute("rel", "noopener noreferrer nofollow")
        assistant = log.locator(".message.assistant .bubble")
        expect(assistant).to_contain_text('<img src=x onerror="window.pwned=1;alert(1)">')
        expect(assistant).to_contain_text("<script>window.pwned=2;alert(2)</script>")
        expect(assistant.locator("strong")).to_have_text("<b>bold</b>")
        expect(log.locator(".message.user .bubble")).to_contain_text(
            '<img src=x onerror="window.pwned=3'
        )
        assert page.evaluate("window.pwned") is None
        assert harness.dialogs == []

    assert_inert()
    page.reload()  # stored history renders through the same safe path
    expect(page.locator(".message.assistant .bubble")).to_be_visible()
    assert_inert()


def test_agent_reads_a_ticket_and_changes_its_status(
    harness: Harness, sqlite_store: Store, tmp_path: Path
) -> None:
    url = harness.serve(
        ScriptedModel(
            ScriptedModel.call(
                "create_customer_ticket",
                name="Omar Haddad",
                issue="Cannot log in after password reset",
            ),
            ScriptedModel.text("I've filed **ticket #1** — our team will email you within a day."),
        )
    )
    created = httpx.post(url + "/api/conversations").json()
    httpx.post(
        f"{url}/api/conversations/{created['id']}/messages",
        headers={"Authorization": f"Bearer {created['token']}"},
        json={"text": "I'm Omar Haddad and I can't log in since I reset my password."},
        timeout=30,
    ).raise_for_status()
    sqlite_store.tickets.create(
        "Ana Lima", "Refund for a soda I never ordered", category="refund", amount_cents=250
    )

    page = harness.page
    page.goto(url + "/agents")
    page.fill("#admin-key", "wrong key")
    page.press("#admin-key", "Enter")
    expect(page.locator("#login-error")).to_contain_text("not the admin key")
    page.fill("#admin-key", ADMIN)
    page.click("#login button[type=submit]")
    expect(page.locator("#tickets button")).to_have_count(2)

    page.click("#tickets button:has-text('Omar Haddad')")
    panel = page.locator("#ticket")
    expect(panel.locator("h2")).to_have_text("#1 · Omar Haddad")
    expect(panel.locator(".issue")).to_have_text("Cannot log in after password reset")
    expect(panel.locator(".message.user .bubble")).to_contain_text("I can't log in since I reset")
    expect(panel.locator(".tool.finished .label")).to_have_text("Ticket created")
    expect(panel.locator(".message.assistant .bubble strong")).to_have_text("ticket #1")
    keep_screenshot(page, tmp_path, "agents.png")

    page.select_option("#ticket-status", "resolved")
    page.click(".status-form button[type=submit]")
    expect(panel.locator(".status-form .saved")).to_have_text("Saved: Resolved")
    assert sqlite_store.tickets.get(1).status == "resolved"  # type: ignore[union-attr]

    page.select_option("#filter", "resolved")
    expect(page.locator("#tickets button")).to_have_count(1)
    expect(page.locator("#tickets button .title")).to_have_text("#1 · Omar Haddad")
    page.select_option("#filter", "closed")
    expect(page.locator("#tickets .empty")).to_have_text("No tickets with this status.")

    page.reload()  # the key is kept for this tab
    expect(page.locator("#desk")).to_be_visible()


def test_an_agent_replies_in_the_customers_chat_and_hands_back(
    harness: Harness, tmp_path: Path
) -> None:
    url = harness.serve(
        ScriptedModel(
            ScriptedModel.call("create_customer_ticket", name="Omar", issue="Cannot log in"),
            ScriptedModel.text("I've filed ticket #1 for you."),
        )
    )
    chat = harness.open_chat()
    harness.say("I'm Omar and I can't log in")
    harness.wait_for_answer()

    desk = harness.context.new_page()
    desk.goto(url + "/agents")
    desk.fill("#admin-key", ADMIN)
    desk.press("#admin-key", "Enter")
    desk.click("#tickets button:has-text('Omar')")

    def reply(text: str) -> None:
        desk.fill("#agent-reply", text)
        desk.click(".reply-form button[type=submit]")
        expect(desk.locator(".reply-status")).to_have_text(
            "Sent: the customer sees it in their chat."
        )
        expect(desk.locator("#agent-reply")).to_have_value("")

    expect(desk.locator(".who-answers")).to_have_text("The assistant answers this chat.")
    reply("Hi Omar, this is Ana from support. Try the reset link again?")
    expect(desk.locator(".who-answers")).to_contain_text("The support team has this chat")
    expect(desk.locator("#ticket .message.agent .bubble")).to_contain_text("Ana from support")

    harness.say("Who's there?")  # a person has the conversation now: the model stays out of it
    harness.wait_for_answer()
    expect(desk.locator("#ticket .message.user .bubble").last).to_have_text(
        "Who's there?", timeout=15_000
    )  # the open ticket follows the chat
    expect(chat.locator(".message.agent .bubble")).to_contain_text("Ana from support")
    expect(chat.locator(".message.assistant .bubble").last).to_have_text(WITH_AGENT_REPLY)

    reply("It should work now: I reset it for you.")  # the open chat picks it up by itself
    expect(chat.locator(".message.agent .bubble").last).to_have_text(
        "It should work now: I reset it for you.", timeout=15_000
    )
    expect(chat.locator(".message.agent .who").first).to_have_text("Support team")
    keep_screenshot(chat, tmp_path, "with-agent.png")

    desk.click(".reply-form button:has-text('Hand back to the assistant')")
    expect(desk.locator(".reply-status")).to_have_text(
        "Handed back: the assistant answers the customer again."
    )
    expect(desk.locator(".who-answers")).to_have_text("The assistant answers this chat.")
    conversation_id = chat.evaluate("JSON.parse(localStorage.getItem('helpline.conversation')).id")
    info = harness.store.conversations.get(conversation_id)
    assert info is not None and info.status == "active"


# For each character of the element's text, its left edge on screen, in stored order.
_CHARACTER_POSITIONS = """(selector) => {
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const positions = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getBoundingClientRect();
      positions.push([node.data[i], box.left, box.top]);
    }
  }
  return positions;
}"""


def displayed_in_stored_order(page: Page, selector: str) -> bool:
    """Whether each character is drawn right of the one before it (on the same line)."""
    positions = [(x, y) for _, x, y in page.evaluate(_CHARACTER_POSITIONS, selector)]
    return all(x1 < x2 for (x1, y1), (x2, y2) in itertools.pairwise(positions) if y1 == y2)


def test_bidi_controls_in_a_ticket_cannot_reverse_what_the_agent_reads(
    harness: Harness, sqlite_store: Store
) -> None:
    """ "Ana \\u202eLima" would display as "Ana amiL"; the agent sees the control's code instead,
    and the text in the order it was written. The ticket keeps it as written."""
    name = "Ana \u202eLima"
    issue = "Refund \u202efor order\u202c 17 and \u2067invoice\u2069 fdp.exe"
    url = harness.serve(ScriptedModel())
    said = {"role": "user", "content": "My order is \u202e71 ,DD-\u202c late"}
    conversation = sqlite_store.conversations.create(messages=[said])
    ticket = sqlite_store.tickets.create(name, issue, conversation_id=conversation)[0].id
    page = harness.page
    page.goto(url + "/agents")
    page.fill("#admin-key", ADMIN)
    page.press("#admin-key", "Enter")
    expect(page.locator("#tickets button")).to_have_count(1)
    expect(page.locator("#tickets button .title")).to_have_text(f"#{ticket} · Ana [U+202E]Lima")
    expect(page.locator("#tickets button .sub")).to_have_text(
        "Refund [U+202E]for order[U+202C] 17 and [U+2067]invoice[U+2069] fdp.exe"
    )
    page.click("#tickets button")
    panel = page.locator("#ticket")
    expect(panel.locator("h2")).to_have_text(f"#{ticket} · Ana [U+202E]Lima")
    expect(panel.locator(".issue")).to_contain_text("[U+202E]for order[U+202C]")
    expect(panel.locator(".message.user .bubble")).to_have_text(
        "My order is [U+202E]71 ,DD-[U+202C] late"
    )
    for selector in (
        "#tickets button .title",
        "#tickets button .sub",
        "#ticket h2",
        "#ticket .issue",
        "#ticket .message.user .bubble",
    ):
        assert displayed_in_stored_order(page, selector), selector
    stored = sqlite_store.tickets.get(ticket)
    assert stored is not None and (stored.name, stored.issue) == (name, issue)
