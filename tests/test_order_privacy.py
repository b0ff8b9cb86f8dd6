"""One conversation cannot probe address after address: order look-ups are limited per
conversation (the profile's policy), and a wrong address reads like a wrong order number."""

from __future__ import annotations

import asyncio
import json

from helpline.messages import ToolCall
from helpline.store import Store
from helpline.support.demo import seed_demo_orders
from helpline.support.orders import order_tools
from helpline.support.profile import load_profile
from helpline.tools import ToolContext, Toolset

PROFILE = load_profile()


async def _call(
    store: Store, conversation_id: str, call_id: str, tool: str, **arguments: str
) -> str:
    toolset = Toolset(order_tools(PROFILE))
    context = ToolContext(conversation_id=conversation_id, tool_call_id=call_id, store=store)
    return await toolset.call(ToolCall.make(call_id, tool, json.dumps(arguments)), context)


async def test_a_conversation_cannot_probe_many_addresses(store: Store) -> None:
    seed_demo_orders(store)
    failed = PROFILE.settings.failed_order_lookups_per_conversation
    assert failed == 5
    conversation_id = store.conversations.create()
    probes = [f"someone{n}@example.com" for n in range(12)] + ["lena@example.com"]
    answers = await asyncio.gather(  # one model round of parallel calls
        *(
            _call(store, conversation_id, f"call_{n}", "list_recent_orders", email=email)
            for n, email in enumerate(probes)
        )
    )
    looked = [a for a in answers if not a.startswith("Error:")]
    assert len(looked) == failed, answers
    assert all("No more orders can be looked up" in a for a in answers if a.startswith("Error:"))
    after = await _call(
        store, conversation_id, "call_x", "list_recent_orders", email="lena@example.com"
    )
    assert after.startswith("Error: No more orders can be looked up") and "DD-10233" not in after
    found = await _call(
        store,
        conversation_id,
        "call_y",
        "lookup_order",
        order_id="DD-10233",
        email="lena@example.com",
    )
    assert found.startswith("Error: No more orders can be looked up")  # limited, not telling
    fresh = store.conversations.create()
    listed = json.loads(
        await _call(store, fresh, "call_0", "list_recent_orders", email="lena@example.com")
    )
    assert [o["order_id"] for o in listed["orders"]] == ["DD-10233", "DD-10220"]


async def test_look_ups_are_limited_even_when_they_find(store: Store) -> None:
    seed_demo_orders(store)
    most = PROFILE.settings.order_lookups_per_conversation
    conversation_id = store.conversations.create()
    for n in range(most):
        answer = await _call(
            store,
            conversation_id,
            f"call_{n}",
            "lookup_order",
            order_id="DD-10231",
            email="omar@example.com",
        )
        assert not answer.startswith("Error:"), (n, answer)
    over = await _call(
        store,
        conversation_id,
        "call_over",
        "lookup_order",
        order_id="DD-10231",
        email="omar@example.com",
    )
    assert over.startswith("Error: No more orders can be looked up")


async def test_an_unknown_address_reads_like_a_known_one_without_that_order(store: Store) -> None:
    seed_demo_orders(store)
    conversation_id = store.conversations.create()
    known = await _call(
        store, conversation_id, "c1", "lookup_order", order_id="DD-10231", email="lena@example.com"
    )
    unknown = await _call(
        store, conversation_id, "c2", "lookup_order", order_id="DD-10231", email="zed@example.com"
    )
    assert known.replace("lena@", "zed@") == unknown
    assert known.startswith("Error: There is no order DD-10231 for lena@example.com.")
    conversation = store.conversations.delete(conversation_id)  # its look-ups go with it
    assert conversation is True
