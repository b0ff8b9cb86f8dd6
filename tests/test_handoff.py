"""Handoff to a person: the conversation waits for an agent, and agents get one ticket."""

from __future__ import annotations

import json
from typing import Any

from helpline.messages import ToolCall
from helpline.store import Store
from helpline.support.handoff import handoff_tools
from helpline.support.profile import load_profile
from helpline.tools import ToolContext, Toolset


async def _escalate(store: Store, conversation_id: str, call_id: str, **arguments: Any) -> Any:
    toolset = Toolset(handoff_tools(load_profile()))
    context = ToolContext(conversation_id=conversation_id, tool_call_id=call_id, store=store)
    call = ToolCall.make(call_id, "escalate_to_human", json.dumps(arguments))
    text = await toolset.call(call, context)
    return text if text.startswith("Error:") else json.loads(text)


async def test_handoff_waits_for_an_agent_and_files_one_ticket(store: Store) -> None:
    conversation_id = store.conversations.create()
    result = await _escalate(store, conversation_id, "call_1", reason="wants a person", name="Omar")
    conversation = store.conversations.get(conversation_id)
    assert conversation is not None and conversation.status == "waiting_for_agent"
    [ticket] = store.tickets.find(conversation_id=conversation_id)
    assert (ticket.id, ticket.category, ticket.name, ticket.issue) == (
        result["ticket_id"],
        "handoff",
        "Omar",
        "wants a person",
    )
    assert "every day from 08:00 to 23:00 (CET)" in result["message"]
    assert f"ticket #{ticket.id}" in result["message"]
    again = await _escalate(store, conversation_id, "call_2", reason="still waiting")
    assert again["ticket_id"] == ticket.id
    assert len(store.tickets.find(conversation_id=conversation_id)) == 1


async def test_handoff_uses_the_name_from_an_earlier_ticket(store: Store) -> None:
    conversation_id = store.conversations.create()
    store.tickets.create("Lena Fischer", "cannot log in", conversation_id=conversation_id)
    result = await _escalate(store, conversation_id, "call_1", reason="login still broken")
    ticket = store.tickets.get(result["ticket_id"])
    assert ticket is not None and (ticket.name, ticket.category) == ("Lena Fischer", "handoff")


async def test_handoff_needs_a_reason(sqlite_store: Store) -> None:
    conversation_id = sqlite_store.conversations.create()
    result = await _escalate(sqlite_store, conversation_id, "call_1", reason=" ")
    assert result.startswith("Error: invalid arguments for escalate_to_human: reason")
    assert sqlite_store.tickets.find() == []
    conversation = sqlite_store.conversations.get(conversation_id)
    assert conversation is not None and conversation.status == "active"
