"""What one model reply may cost is capped: its tool calls, its text and each tool result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from helpline.assistant import (
    DEFAULT_MAX_TOOL_CALLS,
    REPLY_CUT_MARKER,
    TOOL_RESULT_CUT_MARKER,
    Assistant,
    too_many_tool_calls,
)
from helpline.events import TurnDone, TurnEvent, TurnText, TurnToolCall, TurnToolResult
from helpline.messages import UserMessage, from_wire, unanswered_tool_calls
from helpline.models.base import ModelEvent, TextDelta
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.scripted import ScriptedModel
from helpline.store import Store
from helpline.tools import tool
from tests.fake_openai import FakeOpenAI, text_reply


async def _turn(assistant: Assistant, conversation_id: str, text: str) -> list[TurnEvent]:
    stream = assistant.run_turn(conversation_id, UserMessage(content=text))
    return await asyncio.wait_for(_collect(stream), timeout=10)


async def _collect(stream: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
    return [event async for event in stream]


def _answer(events: list[TurnEvent]) -> str:
    return "".join(e.delta for e in events if isinstance(e, TurnText))


async def test_tool_calls_beyond_the_cap_are_answered_with_an_error_not_run(
    sqlite_store: Store,
) -> None:
    filed: list[str] = []

    @tool
    def file_ticket(issue: str) -> str:
        """File a ticket.

        Args:
            issue: What went wrong.
        """
        filed.append(issue)
        return f"Ticket for {issue} filed."

    many = [("file_ticket", {"issue": f"issue {i}"}) for i in range(200)]
    model = ScriptedModel(ScriptedModel.calls(*many), ScriptedModel.text("Filed eight."))
    assistant = Assistant(model, sqlite_store, [file_ticket])
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "file lots")

    # The first calls up to the cap ran (concurrently, so in any order); no others did.
    assert sorted(filed) == sorted(f"issue {i}" for i in range(DEFAULT_MAX_TOOL_CALLS))
    assert sum(isinstance(e, TurnToolCall) for e in events) == DEFAULT_MAX_TOOL_CALLS
    assert sum(isinstance(e, TurnToolResult) for e in events) == DEFAULT_MAX_TOOL_CALLS
    stored = sqlite_store.conversations.messages(conversation_id)
    messages = [from_wire(m) for m in stored]
    assert not unanswered_tool_calls(messages)  # every call has a result
    results = [m["content"] for m in stored if m["role"] == "tool"]
    assert len(results) == 200
    assert (
        results[DEFAULT_MAX_TOOL_CALLS - 1]
        == f"Ticket for issue {DEFAULT_MAX_TOOL_CALLS - 1} filed."
    )
    refusal = too_many_tool_calls(DEFAULT_MAX_TOOL_CALLS)
    assert results[DEFAULT_MAX_TOOL_CALLS:] == [refusal] * (200 - DEFAULT_MAX_TOOL_CALLS)
    assert refusal.startswith("Error: too many tool calls in one reply")
    assert f"at most {DEFAULT_MAX_TOOL_CALLS}" in refusal
    assert model.requests[-1].messages == stored[:-1]  # the model read every refusal


async def test_the_tool_call_cap_is_a_setting(sqlite_store: Store) -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel(ScriptedModel.calls(*[("ping", {})] * 3), ScriptedModel.text("ok"))
    assistant = Assistant(model, sqlite_store, [ping], max_tool_calls=1)
    conversation_id = assistant.new_conversation()
    await _turn(assistant, conversation_id, "ping thrice")
    results = [m["content"] for m in sqlite_store.conversations.messages(conversation_id)[3:6]]
    assert results == ["pong", too_many_tool_calls(1), too_many_tool_calls(1)]


class _Endless(ScriptedModel):
    """A model that never stops talking; records whether its stream was closed."""

    closed = False

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelEvent]:  # type: ignore[override]
        try:
            while True:
                yield TextDelta("blah ")
                await asyncio.sleep(0)
        finally:
            self.closed = True


async def test_a_reply_past_the_text_cap_is_cut_there_stored_and_streamed_alike(
    sqlite_store: Store,
) -> None:
    model = _Endless()
    assistant = Assistant(model, sqlite_store, max_reply_chars=1_002)
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "talk")

    shown = _answer(events)
    assert shown == "blah " * 200 + "bl" + REPLY_CUT_MARKER
    assert isinstance(events[-1], TurnDone)
    assert model.closed  # the model's stream is stopped, not left running
    assert sqlite_store.conversations.messages(conversation_id)[-1] == {
        "role": "assistant",
        "content": shown,
    }


async def test_a_huge_reply_over_http_is_stored_at_the_default_cap(
    sqlite_store: Store, fake_openai: FakeOpenAI
) -> None:
    chunk = "x" * 999 + " "
    fake_openai.script(text_reply([chunk] * 1_000))  # a 1 MB answer
    model = OpenAICompatModel(fake_openai.base_url, "fake-model", "test", max_retries=0)
    assistant = Assistant(model, sqlite_store)
    conversation_id = assistant.new_conversation()
    try:
        events = await _turn(assistant, conversation_id, "say a lot")
    finally:
        await model.aclose()
    stored = sqlite_store.conversations.messages(conversation_id)[-1]["content"]
    assert stored == (chunk * 32)[:32_000] + REPLY_CUT_MARKER
    assert _answer(events) == stored


async def test_a_tool_result_past_the_cap_is_cut_where_it_is_stored(sqlite_store: Store) -> None:
    @tool
    def dump() -> str:
        """Returns far too much."""
        return "0123456789" * 10_000

    model = ScriptedModel(ScriptedModel.call("dump"), ScriptedModel.text("done"))
    assistant = Assistant(model, sqlite_store, [dump], max_tool_result_chars=50)
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "dump it")
    expected = "0123456789" * 5 + TOOL_RESULT_CUT_MARKER
    (result,) = [e for e in events if isinstance(e, TurnToolResult)]
    assert result.content == expected
    assert sqlite_store.conversations.messages(conversation_id)[3]["content"] == expected
    assert model.requests[-1].messages[3]["content"] == expected
