"""Refunds sent at the same moment never pay back more than the order cost, nor an item twice.

The order is locked while the refund rules are checked and the refund recorded: raced with
threads on the store (SQLite and PostgreSQL, one engine per thread as separate workers have),
and with simultaneous chat messages to a real server.
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.models.openai_compat import OpenAICompatModel
from helpline.server import create_app
from helpline.server.testing import LiveServer, parse_sse
from helpline.store import Order, OrderItem, Refund, RefundRefused, Store
from helpline.store.tables import utcnow
from helpline.support.orders import order_tools
from tests.fake_openai import FakeOpenAI, text_reply, tool_call_reply
from tests.profiles import paid_at_once

ROUNDS = 10
PAID = 2499
"""Lena's Thai order: the items cost 32.00, a promo code took it to 24.99."""
ITEMS = {"Pad Thai": 1250, "Green Curry": 1350, "Jasmine Rice": 600}
ASKED = ["Pad Thai", "Green Curry", "Jasmine Rice", "Pad Thai", "Green Curry"]
"""Five simultaneous requests: each item once, two of them twice."""


def _thai_order(order_id: str) -> Order:
    delivered = utcnow() - timedelta(hours=2)
    return Order(
        id=order_id,
        customer_name="Lena Fischer",
        customer_email="lena@example.com",
        placed_at=delivered - timedelta(minutes=50),
        delivered_at=delivered,
        status="delivered",
        currency="EUR",
        total_cents=PAID,
        restaurant="Thai Orchid",
        items=tuple(OrderItem(name, 1, price) for name, price in ITEMS.items()),
    )


def _workers(store: Store, tmp_path: Path) -> list[Store]:
    """One store per racing thread: on SQLite each its own engine, as worker processes have."""
    if store.engine.dialect.name != "sqlite":
        return [store] * len(ASKED)
    return [Store.open(f"sqlite:///{tmp_path / 'helpline.db'}") for _ in ASKED]


def _assert_capped(store: Store, order_id: str) -> None:
    order = store.orders.get(order_id)
    assert order is not None
    names = [r.item_name for r in order.refunds]
    assert sorted(names) == sorted(set(names)), f"an item refunded twice: {names}"
    assert order.refunded_cents == PAID, f"{order.refunded_cents} cents refunded on {PAID}"


def test_simultaneous_refunds_are_capped_at_what_was_paid(store: Store, tmp_path: Path) -> None:
    workers = _workers(store, tmp_path)
    try:
        for round_number in range(ROUNDS):
            order_id = f"DD-R{round_number}"
            store.orders.add(_thai_order(order_id))
            start = threading.Barrier(len(ASKED))

            def refund(
                worker: Store,
                item: str,
                order_id: str = order_id,
                start: threading.Barrier = start,
            ) -> int:
                start.wait()
                try:
                    recorded = worker.orders.record_refunds(
                        order_id, [Refund(item, 1, ITEMS[item], "cold")]
                    )
                except RefundRefused:
                    return 0
                return sum(r.amount_cents for r in recorded)

            with ThreadPoolExecutor(len(ASKED)) as pool:
                paid = list(pool.map(refund, workers, ASKED))
            assert sum(paid) == PAID, paid
            _assert_capped(store, order_id)
    finally:
        for worker in set(workers) - {store}:
            worker.close()


def _refund_call(body: dict[str, Any]) -> Any:
    """The model: refund the item the customer names, then say what the tool answered."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return text_reply(json.loads(last["content"]).get("message", "Done."))
    order_id, item = last["content"].split(":")
    arguments = {"order_id": order_id, "email": "lena@example.com", "items": [item]}
    call = (
        f"call_{uuid.uuid4().hex[:8]}",
        "request_refund",
        json.dumps(arguments | {"reason": "cold"}),
    )
    return tool_call_reply([call])


def test_refunds_asked_at_the_same_moment_over_http_never_exceed_the_order(
    store: Store, fake_openai: FakeOpenAI
) -> None:
    model = OpenAICompatModel(fake_openai.base_url, "fake-model", "test", max_retries=0)
    assistant = Assistant(model, store, order_tools(paid_at_once()), "You refund orders.")
    with LiveServer(create_app(assistant, Settings())) as server, httpx.Client(timeout=30) as http:
        for round_number in range(ROUNDS):
            order_id = f"DD-H{round_number}"
            store.orders.add(_thai_order(order_id))
            fake_openai.script(*[_refund_call] * (2 * len(ASKED)))
            chats = [http.post(server.url + "/api/conversations").json() for _ in ASKED]

            def ask(chat: dict[str, str], item: str, order_id: str = order_id) -> str:
                response = http.post(
                    f"{server.url}/api/conversations/{chat['id']}/messages",
                    headers={"Authorization": f"Bearer {chat['token']}"},
                    json={"text": f"{order_id}:{item}"},
                )
                assert response.status_code == 200, response.text
                return "".join(
                    e.data["delta"] for e in parse_sse(response.text) if e.event == "text"
                )

            with ThreadPoolExecutor(len(ASKED)) as pool:
                answers = list(pool.map(ask, chats, ASKED))
            _assert_capped(store, order_id)
            approved = [a for a in answers if "approved" in a]
            assert 2 <= len(approved) <= len(ITEMS), answers
            tickets = [t for t in store.tickets.find(limit=1000) if order_id in t.issue]
            open_amounts = [t.amount_cents for t in tickets if t.status != "closed"]
            assert sum(a or 0 for a in open_amounts) == PAID, tickets
