"""The turn loop on a real database: persistence, tools, limits, failures, serialisation."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from helpline.assistant import FAILED_REPLY, MODEL_DOWN_REPLY, ROUND_LIMIT_REPLY, Assistant
from helpline.events import TurnDone, TurnError, TurnEvent, TurnRestart, TurnText, TurnToolResult
from helpline.messages import UserMessage, from_wire, unanswered_tool_calls
from helpline.models.base import (
    Finish,
    ModelError,
    ModelEvent,
    ResponseFormat,
    StreamRestart,
    TextDelta,
    Usage,
)
from helpline.models.scripted import Reply, ScriptedModel
from helpline.store import Store
from helpline.support.tickets import create_customer_ticket
from helpline.tools import ToolContext, tool


async def _turn(assistant: Assistant, conversation_id: str, text: str) -> list[TurnEvent]:
    return [event async for event in assistant.run_turn(conversation_id, UserMessage(content=text))]


def _answer(events: list[TurnEvent]) -> str:
    return "".join(e.delta for e in events if isinstance(e, TurnText))


def _roles(store: Store, conversation_id: str) -> list[str]:
    return [m["role"] for m in store.conversations.messages(conversation_id)]


async def test_seed_ticket_conversation_is_stored_in_wire_form(store: Store) -> None:
    model = ScriptedModel(
        ScriptedModel.text("I'm sorry to hear that! What's your name?"),
        ScriptedModel.call("create_customer_ticket", name="Omar", issue="Cannot log in"),
        ScriptedModel.text("Thanks Omar, your ticket is filed."),
    )
    assistant = Assistant(model, store, [create_customer_ticket], "Be helpful.")
    conversation_id = assistant.new_conversation()

    first = await _turn(assistant, conversation_id, "I can't log in to my account")
    assert _answer(first) == "I'm sorry to hear that! What's your name?"
    second = await _turn(assistant, conversation_id, "Omar")
    result = next(e for e in second if isinstance(e, TurnToolResult))
    assert result.content.startswith("Ticket #1 created for Omar")
    assert isinstance(second[-1], TurnDone)

    (ticket,) = store.tickets.find()
    assert (ticket.name, ticket.issue, ticket.conversation_id) == (
        "Omar",
        "Cannot log in",
        conversation_id,
    )
    messages = store.conversations.messages(conversation_id)
    assert [m["role"] for m in messages] == [
        "system", "user", "assistant", "user", "assistant", "tool", "assistant",
    ]  # fmt: skip
    assert messages[0] == {"role": "system", "content": "Be helpful."}
    assert messages[4]["content"] is None
    assert messages[5]["tool_call_id"] == messages[4]["tool_calls"][0]["id"]
    assert not unanswered_tool_calls([from_wire(m) for m in messages])
    # What the model saw last is exactly the stored history before its answer.
    assert model.requests[-1].messages == messages[:-1]
    assert model.requests[-1].tools == [create_customer_ticket.schema()]
    info = store.conversations.get(conversation_id)
    assert info is not None and info.completion_tokens > 0


async def test_customer_message_is_stored_before_the_model_is_called(store: Store) -> None:
    seen: list[list[str]] = []

    def reply(messages: list[dict[str, Any]]) -> Reply:
        seen.append(_roles(store, conversation_id))
        return Reply(text="ok")

    assistant = Assistant(ScriptedModel(reply), store)
    conversation_id = assistant.new_conversation()
    await _turn(assistant, conversation_id, "hello")
    assert seen == [["system", "user"]]


async def test_model_failure_stores_the_apology_after_the_customer_message(store: Store) -> None:
    model = ScriptedModel()  # no replies: the model fails
    assistant = Assistant(model, store, turn_wait_seconds=0)
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "my order never came")
    assert isinstance(events[-1], TurnError)
    assert events[-1].message == MODEL_DOWN_REPLY  # the customer sees no internals
    assert "no reply left" in (events[-1].detail or "")
    assert store.conversations.messages(conversation_id)[1:] == [
        {"role": "user", "content": "my order never came"},
        {"role": "assistant", "content": MODEL_DOWN_REPLY},  # what the customer saw
    ]
    model.replies.append(ScriptedModel.text("It's on its way."))  # the lease was given back
    assert _answer(await _turn(assistant, conversation_id, "hello?")) == "It's on its way."


class _BrokenModel(ScriptedModel):
    """Starts answering, then fails: with a ModelError, or with a bug (any other exception)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelEvent]:  # type: ignore[override]
        yield TextDelta("Let me ")
        raise self.error


async def test_an_unexpected_error_ends_the_turn_with_a_stored_apology(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    crashed_before = _turns_counted("crashed")
    assistant = Assistant(_BrokenModel(KeyError("choices")), store, turn_wait_seconds=0)
    conversation_id = assistant.new_conversation()
    with caplog.at_level(logging.ERROR, logger="helpline"):
        events = await _turn(assistant, conversation_id, "where is my order?")
    assert events[-1] == TurnError(FAILED_REPLY, detail="The turn failed (KeyError: 'choices').")
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert conversation_id in logged.getMessage() and "failed unexpectedly" in logged.getMessage()
    assert logged.exc_info is not None  # the operator gets the traceback
    assert store.conversations.messages(conversation_id)[1:] == [
        {"role": "user", "content": "where is my order?"},
        {"role": "assistant", "content": FAILED_REPLY},
    ]
    assert _turns_counted("crashed") == crashed_before + 1
    assistant.model = ScriptedModel(ScriptedModel.text("Found it."))
    assert _answer(await _turn(assistant, conversation_id, "again")) == "Found it."


async def test_a_model_error_after_a_tool_round_keeps_the_round_and_its_results(
    sqlite_store: Store,
) -> None:
    class FailsSecond(ScriptedModel):
        async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelEvent]:  # type: ignore[override]
            if self.requests:
                raise ModelError("The provider sent a malformed chunk.")
            async for event in super().stream(*args, **kwargs):
                yield event

    model = FailsSecond(ScriptedModel.call("create_customer_ticket", name="Omar", issue="login"))
    assistant = Assistant(model, sqlite_store, [create_customer_ticket])
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "I can't log in, I'm Omar")
    assert events[-1] == TurnError(MODEL_DOWN_REPLY, detail="The provider sent a malformed chunk.")
    messages = [from_wire(m) for m in sqlite_store.conversations.messages(conversation_id)]
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert not unanswered_tool_calls(messages)
    assert messages[-1].content == MODEL_DOWN_REPLY


def _turns_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("helpline_turns_total", {"outcome": outcome}) or 0.0


async def test_parallel_tool_calls_run_concurrently_and_answer_in_call_order(
    sqlite_store: Store,
) -> None:
    second_started = asyncio.Event()

    @tool
    async def first() -> str:
        """Waits for the second tool: only possible if both run at once."""
        await asyncio.wait_for(second_started.wait(), timeout=5)
        return "first done"

    @tool
    async def second() -> str:
        """Starts, then finishes immediately."""
        second_started.set()
        return "second done"

    model = ScriptedModel(
        ScriptedModel.calls(("first", {}), ("second", {})), ScriptedModel.text("both")
    )
    assistant = Assistant(model, sqlite_store, [first, second])
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "go")
    assert _answer(events) == "both"
    messages = sqlite_store.conversations.messages(conversation_id)
    calls = messages[2]["tool_calls"]
    assert [m["tool_call_id"] for m in messages[3:5]] == [c["id"] for c in calls]
    assert [m["content"] for m in messages[3:5]] == ["first done", "second done"]


async def test_tool_errors_go_back_to_the_model(sqlite_store: Store) -> None:
    model = ScriptedModel(
        ScriptedModel.call("create_customer_ticket", name="", issue="login"),
        ScriptedModel.call("create_customer_ticket", name="Omar", issue="login broken"),
        ScriptedModel.text("Filed."),
    )
    assistant = Assistant(model, sqlite_store, [create_customer_ticket])
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "help")
    results = [e.content for e in events if isinstance(e, TurnToolResult)]
    assert results[0].startswith("Error: invalid arguments for create_customer_ticket: name")
    assert results[1].startswith("Ticket #1")
    assert len(sqlite_store.tickets.find()) == 1


async def test_round_limit_stops_a_runaway_loop(sqlite_store: Store) -> None:
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel(*[ScriptedModel.call("ping") for _ in range(10)])
    assistant = Assistant(model, sqlite_store, [ping], max_rounds=3)
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "loop forever")
    assert _answer(events).endswith(ROUND_LIMIT_REPLY)
    assert len(model.requests) == 3
    messages = [from_wire(m) for m in sqlite_store.conversations.messages(conversation_id)]
    assert not unanswered_tool_calls(messages)
    assert messages[-1].content == ROUND_LIMIT_REPLY


class _RestartingModel:
    """Streams some text, breaks, then streams the real answer (like a retried stream)."""

    name = "restarting"

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        yield TextDelta("The refund win")
        yield StreamRestart("connection reset")
        yield TextDelta("Refunds are possible within 30 days.")
        yield Usage(10, 5)
        yield Finish("stop")

    async def aclose(self) -> None:
        return None


async def test_restarted_stream_stores_only_the_final_text(sqlite_store: Store) -> None:
    assistant = Assistant(_RestartingModel(), sqlite_store)
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "refund window?")
    assert any(isinstance(e, TurnRestart) for e in events)
    stored = sqlite_store.conversations.messages(conversation_id)[-1]
    assert stored == {"role": "assistant", "content": "Refunds are possible within 30 days."}


def _slow_echo(delay: float) -> Any:
    """A model that echoes the last message slowly, word by word."""

    class Slow(ScriptedModel):
        async def stream(
            self, messages: list[dict[str, Any]], *args: Any, **kwargs: Any
        ) -> AsyncIterator[ModelEvent]:  # type: ignore[override]
            await asyncio.sleep(delay)
            text = f"echo {messages[-1]['content']}"
            for word in text.split():
                await asyncio.sleep(delay / 5)
                yield TextDelta(word + " ")
            yield Finish("stop")

    return Slow()


async def test_concurrent_turns_are_serialised_not_interleaved(store: Store) -> None:
    assistant = Assistant(_slow_echo(0.05), store)
    conversation_id = assistant.new_conversation()
    await asyncio.gather(*(_turn(assistant, conversation_id, f"m{i}") for i in range(3)))
    messages = store.conversations.messages(conversation_id)[1:]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    for user, answer in zip(messages[::2], messages[1::2], strict=True):
        assert answer["content"].strip() == f"echo {user['content']}"


async def test_turns_are_serialised_across_workers_by_the_database(store: Store) -> None:
    """Two assistants (as in two worker processes) share only the database."""
    workers = [Assistant(_slow_echo(0.05), store) for _ in range(2)]
    conversation_id = workers[0].new_conversation()
    await asyncio.gather(
        _turn(workers[0], conversation_id, "a"), _turn(workers[1], conversation_id, "b")
    )
    messages = store.conversations.messages(conversation_id)[1:]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    assert [m["content"].strip() for m in messages[1::2]] == [
        f"echo {m['content']}" for m in messages[::2]
    ]


async def test_a_turn_completes_when_the_listener_goes_away(sqlite_store: Store) -> None:
    assistant = Assistant(_slow_echo(0.02), sqlite_store)
    conversation_id = assistant.new_conversation()
    stream = assistant.run_turn(conversation_id, UserMessage(content="bye"))
    async for _ in stream:
        break  # the customer closed the tab
    del stream
    for _ in range(100):
        if _roles(sqlite_store, conversation_id)[-1] == "assistant":
            break
        await asyncio.sleep(0.02)
    assert sqlite_store.conversations.messages(conversation_id)[-1]["content"].strip() == "echo bye"


async def test_a_retried_tool_call_files_one_ticket(store: Store) -> None:
    context = ToolContext(conversation_id=None, tool_call_id="call_same", store=store)  # type: ignore[arg-type]
    arguments = json.dumps({"name": "Omar", "issue": "double charge"})
    first = await create_customer_ticket(arguments, context)
    again = await create_customer_ticket(arguments, context)
    assert first == again
    assert len(store.tickets.find()) == 1


async def test_model_error_message_reaches_the_customer(sqlite_store: Store) -> None:
    class Down(ScriptedModel):
        async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ModelEvent]:  # type: ignore[override]
            raise ModelError("The assistant's model did not answer after 5 tries (timed out).")
            yield  # pragma: no cover

    assistant = Assistant(Down(), sqlite_store)
    conversation_id = assistant.new_conversation()
    events = await _turn(assistant, conversation_id, "hello?")
    assert events == [
        TurnError(
            MODEL_DOWN_REPLY,
            detail="The assistant's model did not answer after 5 tries (timed out).",
        )
    ]


async def test_tool_progress_arrives_before_the_result(sqlite_store: Store) -> None:
    @tool
    async def slow_read(context: ToolContext) -> str:
        """Reports progress from the event loop and from a worker thread."""
        context.progress("on the loop")
        await asyncio.to_thread(context.progress, "in a thread")
        context.progress("last step")
        return "read"

    model = ScriptedModel(ScriptedModel.call("slow_read"), ScriptedModel.text("done"))
    assistant = Assistant(model, sqlite_store, [slow_read])
    events = await _turn(assistant, assistant.new_conversation(), "go")
    names = [e.name for e in events if e.name in ("tool_progress", "tool_result")]
    assert names == ["tool_progress"] * 3 + ["tool_result"]
