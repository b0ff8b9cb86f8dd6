"""The turn API channels use: a started turn's events, and a refusal as an exception."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from helpline.assistant import Assistant
from helpline.events import TurnDone, TurnText
from helpline.messages import UserMessage
from helpline.models.scripted import ScriptedModel
from helpline.store import Store
from helpline.turns import TurnRefused, open_thread, start_turn


def assistant(store: Store, *replies: str) -> Assistant:
    model = ScriptedModel(*(ScriptedModel.text(r) for r in replies))
    return Assistant(model, store, [], "You help.", turn_wait_seconds=0.1)


async def test_a_started_turn_has_stored_the_message_and_yields_its_events(
    store: Store,
) -> None:
    helper = assistant(store, "Hello Omar!")
    conversation_id = helper.new_conversation()
    turn = await start_turn(helper, conversation_id, UserMessage(content="Hi, I'm Omar"))
    events = [event async for event in turn]
    assert "".join(e.delta for e in events if isinstance(e, TurnText)) == "Hello Omar!"
    assert isinstance(events[-1], TurnDone)
    roles = [m["role"] for m in store.conversations.messages(conversation_id)]
    assert roles == ["system", "user", "assistant"]


async def test_a_message_that_cannot_be_stored_is_refused_with_the_reason(store: Store) -> None:
    helper = assistant(store, "never sent")
    conversation_id = helper.new_conversation()
    taken = store.conversations.begin_turn(
        conversation_id, "another-worker", timedelta(seconds=30), {"role": "user", "content": "x"}
    )
    assert taken is not None
    with pytest.raises(TurnRefused) as busy:
        await start_turn(helper, conversation_id, UserMessage(content="Hello?"))
    assert busy.value.reason == "busy" and busy.value.event.refused == "busy"

    store.conversations.delete(conversation_id)
    with pytest.raises(TurnRefused) as gone:
        await start_turn(helper, conversation_id, UserMessage(content="Hello?"))
    assert gone.value.reason == "gone" and "new conversation" in gone.value.message.lower()


async def test_a_channels_thread_is_one_conversation_even_when_its_messages_race(
    store: Store,
) -> None:
    helper = assistant(store)
    first = await open_thread(helper, "email", "<order-10231@shop.example>")
    assert await open_thread(helper, "email", "<order-10231@shop.example>") == first
    assert await open_thread(helper, "slack", "<order-10231@shop.example>") != first

    racing = await asyncio.gather(
        *(asyncio.to_thread(asyncio.run, open_thread(helper, "email", "<new@x>")) for _ in range(8))
    )
    assert len(set(racing)) == 1
    assert store.conversations.for_thread("email", "<new@x>") == racing[0]
