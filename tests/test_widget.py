"""The chat widget on a business's own site, in real headless Chromium: a shop page served
from a second origin embeds it with one script tag under a strict CSP."""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.models.base import ChatModel
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.scripted import Reply, ScriptedModel
from helpline.server import create_app
from helpline.server.testing import LiveServer
from helpline.store import Store
from helpline.support import load_profile, support_tools
from helpline.support.demo import seed_demo_orders
from tests.conftest import SHOP_RECEIPT
from tests.fake_openai import FakeOpenAI, text_reply

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
AXE = Path(__file__).resolve().parent.parent / ".venv/npm/node_modules/axe-core/axe.min.js"
ADMIN = "agents-key"
SECRET = "the-shops-backend-signs-customers-with-this-secret-" + "x" * 16
SCREENSHOTS = os.environ.get("HELPLINE_SCREENSHOTS_DIR")
"""Set (e.g. to ``docs``) to keep the widget's screenshot for the README."""

SHOP_CSS = """
body { margin: 0; font: 17px/1.6 Georgia, serif; background: #fbf7f2; color: #2b2118; }
header { background: #7c2d12; color: #fff; padding: 18px 32px; font-size: 22px; font-weight: bold; }
main { max-width: 760px; margin: 32px auto; padding: 0 24px; }
.dish { background: #fff; border: 1px solid #eadfd3; border-radius: 12px; padding: 16px 20px; margin: 14px 0; }
"""
HOSTILE_CSS = """
body * { display: none !important; color: red !important; font: 40px/3 serif !important;
  letter-spacing: 6px !important; box-sizing: content-box !important; }
button { background: hotpink !important; padding: 40px !important; border-radius: 0 !important;
  width: 300px !important; position: static !important; }
html { font-size: 40px; }
"""


class Shop:
    """The business's own site on its own origin, and the Helpline server beside it."""

    def __init__(self) -> None:
        self.helpline = ""
        self.site = LiveServer(self._app(), name="shop site", lifespan="off")
        self.site.start()
        self.server: LiveServer | None = None

    def _app(self) -> Starlette:
        async def page(request: Request) -> Response:
            options = request.query_params
            attributes = "".join(
                f' data-{name}="{html.escape(options[name])}"'
                for name in ("customer-token", "position", "color", "greeting", "strings", "lang")
                if name in options
            )
            sheets = '<link rel="stylesheet" href="/shop.css">'
            if options.get("hostile"):
                sheets += '<link rel="stylesheet" href="/hostile.css">'
            axe = '<script src="/axe.js"></script>' if options.get("axe") else ""
            page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pasta Place</title>{sheets}{axe}</head>
<body><header>Pasta Place</header><main><h1>Our menu</h1>
<div class="dish"><h2>Lasagne</h2><p>Baked with ragù and béchamel. 12.00 €</p></div>
<div class="dish"><h2>Tiramisu</h2><p>Mascarpone, coffee, cocoa. 6.50 €</p></div>
<p><button>Order now</button></p></main>
<script src="{self.helpline}/widget.js" async{attributes}></script>
</body></html>"""
            policy = (
                f"default-src 'none'; script-src 'self' {self.helpline}; "
                f"connect-src {self.helpline}; img-src 'self' blob: data:; style-src 'self'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            )
            return HTMLResponse(page, headers={"Content-Security-Policy": policy})

        async def css(request: Request) -> Response:
            text = HOSTILE_CSS if request.url.path == "/hostile.css" else SHOP_CSS
            return Response(text, media_type="text/css")

        async def axe(_request: Request) -> Response:
            if not AXE.is_file():
                pytest.fail(f"{AXE} is missing: run scripts/dev-setup (it installs axe-core).")
            return FileResponse(AXE, media_type="text/javascript")

        return Starlette(
            routes=[
                Route("/", page),
                Route("/shop.css", css),
                Route("/hostile.css", css),
                Route("/axe.js", axe),
            ]
        )

    def serve(self, model: ChatModel, store: Store) -> None:
        profile = load_profile()
        assistant = Assistant(model, store, support_tools(profile), profile.system_prompt)
        settings = Settings(allowed_origins=self.site.url, identity_secret=SECRET, admin_key=ADMIN)
        self.server = LiveServer(create_app(assistant, settings))
        self.server.start()
        self.helpline = self.server.url

    def url(self, **options: str) -> str:
        return f"{self.site.url}/?{urlencode(options)}"

    def close(self) -> None:
        if self.server:
            self.server.stop()
        self.site.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shop() -> Iterator[Shop]:
    opened = Shop()
    yield opened
    opened.close()


class Visit:
    """A browser tab on the shop's page, recording what the CSP refused."""

    def __init__(self, browser: Browser, width: int = 1200, height: int = 800) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.refused: list[str] = []
        self.page.on(
            "console",
            lambda m: self.refused.append(m.text) if "Content Security Policy" in m.text else None,
        )

    def close(self) -> None:
        """Close the tab; anything the host page's CSP refused fails the test."""
        self.context.close()
        assert self.refused == [], "the widget needs the host page to relax its CSP"

    def open(self, url: str) -> Page:
        self.page.goto(url)
        expect(self.page.locator(".root[data-ready=true]")).to_be_attached()
        return self.page

    def open_chat(self) -> None:
        self.page.click(".launcher")
        expect(self.page.locator(".panel")).to_be_visible()

    def say(self, text: str) -> None:
        self.page.fill("#helpline-input", text)
        self.page.press("#helpline-input", "Enter")

    def wait_for_answer(self) -> None:
        expect(self.page.locator(".message.assistant[aria-busy=true]")).to_have_count(
            0, timeout=30_000
        )
        expect(self.page.locator(".composer button[type=submit]")).to_be_enabled()


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visit]:
    opened = Visit(browser)
    yield opened
    opened.close()


def customer_token(secret: str = SECRET) -> str:
    claims = {
        "sub": "cust-omar",
        "email": "omar@example.com",
        "name": "Omar Haddad",
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def keep_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    if SCREENSHOTS:
        shutil.copy(path, Path(SCREENSHOTS) / name)


def test_one_script_tag_under_a_strict_csp_streams_answers_and_survives_a_reload(
    shop: Shop, visit: Visit, fake_openai: FakeOpenAI, sqlite_store: Store
) -> None:
    answer = "Your **lasagne** is in the oven and leaves the kitchen in about *ten minutes*."
    fake_openai.script(text_reply(answer, delay=0.1))
    shop.serve(OpenAICompatModel(fake_openai.base_url, "fake", "test", max_retries=0), sqlite_store)
    page = visit.open(shop.url())
    expect(page.locator(".panel")).to_be_hidden()
    visit.open_chat()
    expect(page.locator(".start h3")).to_have_text("Hi! How can we help with your order today?")
    visit.say("Where is my lasagne?")

    bubble = page.locator(".message.assistant .bubble").last
    expect(bubble).to_be_visible()
    seen: list[str] = []
    while page.locator(".message.assistant[aria-busy=true]").count():
        text = bubble.text_content() or ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        time.sleep(0.03)
    final = "Your lasagne is in the oven and leaves the kitchen in about ten minutes."
    expect(bubble).to_have_text(final)
    assert len(seen) >= 3, f"the answer did not stream in: {seen}"
    expect(bubble.locator("strong")).to_have_text("lasagne")
    expect(page.locator(".announcer, [aria-live=polite]").last).to_contain_text(final)

    page.reload()
    expect(page.locator(".root[data-ready=true]")).to_be_attached()
    visit.open_chat()
    expect(page.locator(".message.user .bubble")).to_have_text("Where is my lasagne?")
    expect(page.locator(".message.assistant .bubble")).to_have_text(final)

    script = httpx.get(shop.helpline + "/widget.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert len(gzip.compress(script.content)) < 50 * 1024
    assert b"eval(" not in script.content and b"new Function" not in script.content


def test_a_pasted_receipt_is_read(
    shop: Shop, visit: Visit, sqlite_store: Store, tmp_path: Path
) -> None:
    def read_the_shared_image(messages: list[dict[str, Any]]) -> Reply:
        last = messages[-1]["content"]
        reference = last[last.index("image://") : last.index("]", last.index("image://"))]
        return ScriptedModel.call("analyze_receipt_image", image_url=reference)

    def summarise(messages: list[dict[str, Any]]) -> Reply:
        receipt = json.loads(messages[-1]["content"])
        return ScriptedModel.text(
            f"Thanks! Your receipt from **{receipt['date']}** comes to "
            f"{receipt['total_in_cents'] / 100:.2f} {receipt['currency']}. Which item was wrong?"
        )

    shop.serve(ScriptedModel(read_the_shared_image, summarise), sqlite_store)
    page = visit.open(shop.url())
    visit.open_chat()
    photo = base64.b64encode(SHOP_RECEIPT.read_bytes()).decode()
    page.locator("#helpline-input").evaluate(
        """(input, photo) => {
            const bytes = Uint8Array.from(atob(photo), (c) => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], "receipt.jpg", { type: "image/jpeg" }));
            input.dispatchEvent(new ClipboardEvent("paste", {
                clipboardData: data, bubbles: true, composed: true, cancelable: true }));
        }""",
        photo,
    )
    expect(page.locator(".attachment")).to_be_visible()
    expect(page.locator(".attachment span")).to_have_text("receipt.jpg")
    visit.say("I was charged for something I never ordered")

    tool = page.locator(".message.assistant .tool")
    expect(tool).to_be_visible()
    visit.wait_for_answer()
    expect(tool.locator(".label")).to_have_text("Receipt read")
    expect(page.locator(".message.assistant .bubble")).to_contain_text(
        "Your receipt from 2018-12-25"
    )
    expect(page.locator(".message.user img")).to_be_visible()
    expect(page.locator(".attachment")).to_be_hidden()
    page.reload()  # the shared image comes back from the server with the conversation's token
    expect(page.locator(".root[data-ready=true]")).to_be_attached()
    visit.open_chat()
    image = page.locator(".message.user img")
    expect(image).to_be_visible()
    deadline = time.monotonic() + 10
    while not image.evaluate("img => img.naturalWidth"):
        assert time.monotonic() < deadline, "the stored image never loaded"
        time.sleep(0.05)
    keep_screenshot(page, tmp_path, "widget.png")


WIDGET_PARTS = {
    "launcher": ".launcher",
    "panel": ".panel",
    "send": ".composer button[type=submit]",
    "input": "#helpline-input",
    "title": ".panel h2",
}
_LOOKS = """(node) => {
    const style = getComputedStyle(node);
    const box = node.getBoundingClientRect();
    return [box.x, box.y, box.width, box.height, style.display, style.color,
            style.backgroundColor, style.fontSize, style.fontFamily, style.letterSpacing,
            style.padding, style.borderRadius];
}"""


def test_the_host_pages_css_cannot_change_the_widget(
    shop: Shop, browser: Browser, sqlite_store: Store
) -> None:
    shop.serve(ScriptedModel(), sqlite_store)

    def looks(**options: str) -> dict[str, Any]:
        visit = Visit(browser)
        try:
            page = visit.open(shop.url(**options))
            if options.get("hostile"):  # the hostile rules do apply to the host page itself
                expect(page.locator("main")).to_be_hidden()
            visit.open_chat()
            return {
                name: page.locator(selector).evaluate(_LOOKS)
                for name, selector in WIDGET_PARTS.items()
            }
        finally:
            visit.close()

    plain, hostile = looks(), looks(hostile="1")
    assert hostile == plain
    assert plain["launcher"][4] != "none" and plain["send"][6] != "rgb(255, 105, 180)"
    styled = looks(position="left", color="#7c2d12")  # the page's data- attributes win
    assert styled["launcher"][0] == 20 and plain["launcher"][0] > 1000
    assert styled["send"][6] == "rgb(124, 45, 18)" and plain["send"][6] == "rgb(15, 118, 110)"


def test_the_page_sets_the_widgets_words_and_says_when_the_server_refuses_its_site(
    shop: Shop, visit: Visit, sqlite_store: Store
) -> None:
    shop.serve(ScriptedModel(), sqlite_store)
    words = {"send": "Senden", "placeholder": "Ihre Nachricht…", "person": "Mit einem Menschen"}
    page = visit.open(shop.url(lang="de", greeting="Hallo!", strings=json.dumps(words)))
    visit.open_chat()
    expect(page.locator(".start h3")).to_have_text("Hallo!")
    expect(page.locator(".composer button[type=submit]")).to_have_text("Senden")
    expect(page.locator("#helpline-input")).to_have_attribute("placeholder", "Ihre Nachricht…")
    expect(page.locator(".choice button").last).to_have_text("Mit einem Menschen")
    expect(page.locator(".root")).to_have_attribute("lang", "de")

    assert shop.server is not None
    shop.server.stop()  # a Helpline server that does not list this site answers without CORS
    profile = load_profile()
    assistant = Assistant(ScriptedModel(), sqlite_store, [], profile.system_prompt)
    with LiveServer(create_app(assistant, Settings())) as other:
        shop.helpline = other.url
        page.goto(shop.url())
        expect(page.locator(".root[data-ready=true]")).to_be_attached()
        visit.open_chat()
        expect(page.locator(".notice.error")).to_contain_text(
            f"add this site ({shop.site.url}) to HELPLINE_ALLOWED_ORIGINS"
        )


def test_a_signed_in_customers_order_opens_without_an_email(
    shop: Shop, visit: Visit, sqlite_store: Store
) -> None:
    seed_demo_orders(sqlite_store)

    def say_what_was_found(messages: list[dict[str, Any]]) -> Reply:
        order = json.loads(messages[-1]["content"])
        return ScriptedModel.text(f"Order {order['order_id']} from {order['restaurant']}.")

    shop.serve(
        ScriptedModel(ScriptedModel.call("lookup_order", order_id="DD-10231"), say_what_was_found),
        sqlite_store,
    )
    page = visit.open(shop.url(**{"customer-token": customer_token()}))
    visit.open_chat()
    expect(page.locator(".panel .bar p")).to_have_text("Signed in as Omar Haddad")
    visit.say("Where is my order DD-10231?")
    visit.wait_for_answer()
    expect(page.locator(".tool.finished .label")).to_have_text("Order looked up")
    expect(page.locator(".message.assistant .bubble").last).to_have_text(
        "Order DD-10231 from Napoli Express."
    )
    [conversation] = sqlite_store.customers.conversations("cust-omar")

    page.click("button:has-text('Your conversations')")  # the customer's history
    earlier = page.locator(".history li button")
    expect(earlier).to_have_count(1)
    expect(earlier.locator(".last")).to_have_text("Order DD-10231 from Napoli Express.")
    page.click("button:has-text('New chat')")
    expect(page.locator(".message")).to_have_count(0)
    page.click("button:has-text('Your conversations')")
    page.click(".history li button")  # and resumes it
    expect(page.locator(".message.user .bubble")).to_have_text("Where is my order DD-10231?")
    page.reload()
    expect(page.locator(".root[data-ready=true]")).to_be_attached()
    visit.open_chat()
    expect(page.locator(".message.assistant .bubble").last).to_have_text(
        "Order DD-10231 from Napoli Express."
    )
    assert conversation.status == "active"

    sqlite_store.tickets.create("Omar Haddad", "Late order", conversation_id=conversation.id)
    desk = visit.context.new_page()  # the agents see whose conversation it is
    desk.goto(shop.helpline + "/agents")
    desk.fill("#admin-key", ADMIN)
    desk.press("#admin-key", "Enter")
    desk.click("#tickets button:has-text('Omar Haddad')")
    expect(desk.locator("#ticket .meta .customer")).to_have_text("Signed-in customer: cust-omar")


def test_a_forged_token_is_refused_with_a_visible_message(
    shop: Shop, visit: Visit, sqlite_store: Store
) -> None:
    shop.serve(ScriptedModel(), sqlite_store)
    forged = customer_token("someone-who-does-not-know-the-shops-secret-" + "y" * 20)
    page = visit.open(shop.url(**{"customer-token": forged}))
    visit.open_chat()
    refusal = page.locator(".notice.error")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("We couldn't confirm who you are")
    expect(refusal).to_contain_text("signature does not match")
    expect(page.locator("#helpline-input")).to_be_disabled()
    assert sqlite_store.conversations.latest_id() is None  # never an anonymous chat instead

    assert page.evaluate("token => window.Helpline.identify(token)", customer_token()) is True
    expect(page.locator(".panel .bar p")).to_have_text("Signed in as Omar Haddad")
    expect(page.locator("#helpline-input")).to_be_enabled()


def test_the_widget_fills_a_phone_and_works_by_keyboard(
    shop: Shop, browser: Browser, sqlite_store: Store, tmp_path: Path
) -> None:
    shop.serve(
        ScriptedModel(ScriptedModel.text("Refunds go back to your card in 5 days.")), sqlite_store
    )
    visit = Visit(browser, width=390, height=844)
    try:
        page = visit.open(shop.url())
        page.locator(".launcher").focus()
        page.keyboard.press("Enter")
        panel = page.locator(".panel")
        expect(panel).to_be_visible()
        box = panel.bounding_box()
        assert box is not None and (box["x"], box["y"], box["width"], box["height"]) == (
            0,
            0,
            390,
            844,
        )
        page.click("button:has-text('Chat with the assistant')")
        expect(page.locator("#helpline-input")).to_be_focused()
        page.keyboard.type("When do I get my refund?")
        page.keyboard.press("Enter")
        visit.wait_for_answer()
        expect(page.locator(".message.assistant .bubble")).to_have_text(
            "Refunds go back to your card in 5 days."
        )
        expect(page.locator("#helpline-input")).to_be_in_viewport()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        keep_screenshot(page, tmp_path, "widget-phone.png")
        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(page.locator(".launcher")).to_be_focused()
    finally:
        visit.close()


def test_a_person_first_and_no_serious_accessibility_violations(
    shop: Shop, visit: Visit, sqlite_store: Store
) -> None:
    shop.serve(ScriptedModel(), sqlite_store)
    page = visit.open(shop.url(axe="1"))
    visit.open_chat()
    page.click("button:has-text('Talk to a person')")
    note = page.locator(".message.assistant .bubble")
    expect(note).to_contain_text("A person from the Dishdash support team will take over")
    expect(note).to_contain_text("every day from 08:00 to 23:00 (CET)")
    conversation = sqlite_store.conversations.latest_id()
    assert conversation is not None
    info = sqlite_store.conversations.get(conversation)
    assert info is not None and info.status == "waiting_for_agent"
    replied = httpx.post(
        f"{shop.helpline}/api/conversations/{conversation}/replies",
        headers={"Authorization": f"Bearer {ADMIN}"},
        json={"text": "Hi, this is Ana from Dishdash. How can I help?"},
    )
    assert replied.status_code == 201, replied.text
    expect(page.locator(".message.agent .bubble")).to_have_text(
        "Hi, this is Ana from Dishdash. How can I help?", timeout=10_000
    )  # the team's reply appears by itself

    results = page.evaluate(
        """async () => {
            const { violations } = await axe.run(document, { resultTypes: ["violations"] });
            return violations.map((v) => ({ id: v.id, impact: v.impact,
                nodes: v.nodes.map((n) => n.target.join(" ")) }));
        }"""
    )
    assert page.locator(".panel").evaluate("node => node.getRootNode() !== document")
    assert results == []  # none at all inside the widget's shadow root or on the page
