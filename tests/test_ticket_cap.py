"""One conversation files at most the profile's tickets_per_conversation, even in one round."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from helpline.messages import ToolCall
from helpline.store import Store
from helpline.support import support_tools
from helpline.support.demo import seed_demo_orders
from helpline.support.profile import DEFAULT_PROFILE, load_profile
from helpline.tools import ToolContext, Toolset


async def _file_tickets(
    store: Store, toolset: Toolset, conversation_id: str, count: int
) -> list[str]:
    """``count`` ticket calls at once, as one model round with parallel calls runs them."""

    async def file(number: int) -> str:
        call_id = f"call_{number}"
        context = ToolContext(conversation_id=conversation_id, tool_call_id=call_id, store=store)
        arguments = json.dumps({"name": "Omar", "issue": f"problem number {number}"})
        return await toolset.call(
            ToolCall.make(call_id, "create_customer_ticket", arguments), context
        )

    return list(await asyncio.gather(*(file(n) for n in range(count))))


async def test_a_round_of_parallel_ticket_calls_files_no_more_than_the_cap(store: Store) -> None:
    profile = load_profile()
    cap = profile.settings.tickets_per_conversation
    assert cap == 5
    toolset = Toolset(support_tools(profile))
    conversation_id = store.conversations.create()
    results = await _file_tickets(store, toolset, conversation_id, 30)
    filed = [r for r in results if r.startswith("Ticket #")]
    refused = [r for r in results if r.startswith("Error: No ticket was filed")]
    assert (len(filed), len(refused)) == (cap, 30 - cap), results
    assert "the most one conversation may file" in refused[0]
    assert len(store.tickets.find(conversation_id=conversation_id)) == cap
    other = store.conversations.create()  # the cap is per conversation
    assert (await _file_tickets(store, toolset, other, 1))[0].startswith("Ticket #")


async def test_the_cap_is_the_profiles_and_covers_refunds(
    sqlite_store: Store, tmp_path: Path
) -> None:
    folder = tmp_path / "profile"
    shutil.copytree(DEFAULT_PROFILE, folder)
    toml = folder / "profile.toml"
    toml.write_text(
        toml.read_text().replace("tickets_per_conversation = 5", "tickets_per_conversation = 1")
    )
    toolset = Toolset(support_tools(load_profile(folder)))
    conversation_id = sqlite_store.conversations.create()
    first, second = await _file_tickets(sqlite_store, toolset, conversation_id, 2)
    assert first.startswith("Ticket #1") and second.startswith("Error: No ticket was filed")
    seed_demo_orders(sqlite_store)
    context = ToolContext(
        conversation_id=conversation_id, tool_call_id="call_r", store=sqlite_store
    )
    arguments = {
        "order_id": "DD-10231",
        "email": "omar@example.com",
        "items": ["Garlic Bread"],
        "reason": "cold",
    }
    refused = json.loads(
        await toolset.call(
            ToolCall.make("call_r", "request_refund", json.dumps(arguments)), context
        )
    )
    assert (refused["approved"], refused["rule"]) == (False, "ticket_limit")
    order = sqlite_store.orders.get("DD-10231")
    assert order is not None and order.refunds == ()
