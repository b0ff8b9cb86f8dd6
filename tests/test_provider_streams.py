"""Stream shapes real providers send, over real HTTP: content parts, reasoning, errors inside
a stream, malformed chunks, reused tool-call indexes, provider keys on calls, usage details."""

from __future__ import annotations

import io
import json
import logging
import time
from typing import Any

import pytest

from helpline.assistant import Assistant
from helpline.events import TurnDone, TurnEvent, TurnText
from helpline.messages import UserMessage, from_wire
from helpline.models.base import (
    Finish,
    ModelError,
    ModelEvent,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.models.openai_compat import MalformedStream, OpenAICompatModel
from helpline.store import Store
from helpline.support.tickets import create_customer_ticket
from helpline.terminal import TurnPrinter
from tests.fake_openai import (
    FakeOpenAI,
    ToolCallShape,
    content_parts_reply,
    deltas_reply,
    raw_chunk_reply,
    stream_error_reply,
    text_reply,
    tool_call_reply,
)

HELLO = [{"role": "user", "content": "hi"}]
THINKING: dict[str, Any] = {
    "type": "thinking",
    "thinking": [{"type": "text", "text": "The customer wants a refund"}],
}
PARTS: list[dict[str, Any]] = [
    THINKING,
    {"type": "text", "text": "Your refund "},
    {"type": "reasoning", "text": "(check the window)"},
    {"type": "text", "text": "is on its way."},
]


def _model(server: FakeOpenAI, **options: Any) -> OpenAICompatModel:
    options.setdefault("backoff", 0.01)
    return OpenAICompatModel(server.base_url, "fake-model", "test-key", **options)


async def _collect(model: OpenAICompatModel, messages: Any = HELLO) -> list[ModelEvent]:
    try:
        return [event async for event in model.stream(messages)]
    finally:
        await model.aclose()


def _text(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def _chat(assistant: Assistant, conversation_id: str, text: str) -> list[TurnEvent]:
    return [e async for e in assistant.run_turn(conversation_id, UserMessage(content=text))]


# Content parts and reasoning


async def test_content_parts_show_their_text_and_keep_thinking_out(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script(content_parts_reply(PARTS))
    events = await _collect(_model(fake_openai))
    assert _text(events) == "Your refund is on its way."
    assert all(type(e.text) is str for e in events if isinstance(e, TextDelta))
    assert events[-1] == Finish("stop")


async def test_a_chat_turn_with_content_parts_is_shown_and_stored(
    fake_openai: FakeOpenAI, sqlite_store: Store
) -> None:
    fake_openai.script(content_parts_reply(PARTS))
    model = _model(fake_openai)
    assistant = Assistant(model, sqlite_store)
    conversation_id = assistant.new_conversation()
    out = io.StringIO()
    printer = TurnPrinter(out)
    for event in await _chat(assistant, conversation_id, "Where is my refund?"):
        printer.show(event)
    await model.aclose()
    assert out.getvalue() == "Your refund is on its way.\n"
    stored = sqlite_store.conversations.messages(conversation_id)[-1]
    assert stored == {"role": "assistant", "content": "Your refund is on its way."}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_deltas_never_become_answer_text(
    fake_openai: FakeOpenAI, field: Any
) -> None:
    fake_openai.script(
        text_reply("It is 30 days.", reasoning="Secret chain of thought", reasoning_field=field)
    )
    events = await _collect(_model(fake_openai))
    assert _text(events) == "It is 30 days."


# Errors inside a 200 stream


REFUSALS = [
    pytest.param({"message": "Invalid 'messages[1]'", "code": 400}, False, id="code-400"),
    pytest.param({"message": "Invalid 'messages[1]'", "code": "400"}, False, id="code-text"),
    pytest.param(
        {"message": "Invalid 'messages[1]'", "type": "invalid_request_error"}, False, id="type"
    ),
    pytest.param(
        {"message": "Invalid 'messages[1]'", "status": "INVALID_ARGUMENT"}, False, id="grpc"
    ),
    pytest.param({"message": "Invalid 'messages[1]'", "status": 400}, True, id="event-status"),
]


@pytest.mark.parametrize(("error", "event"), REFUSALS)
async def test_a_client_error_in_the_stream_is_reported_as_it_is_without_retries(
    fake_openai: FakeOpenAI, error: dict[str, Any], event: bool
) -> None:
    fake_openai.script(stream_error_reply(error, text="Let me ", event=event), text_reply("no"))
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"\(400: Invalid 'messages\[1\]'\)") as raised:
        await _collect(_model(fake_openai, backoff=2.0))
    assert time.monotonic() - started < 1.5
    assert len(fake_openai.requests) == 1
    assert "did not answer" not in str(raised.value)


RETRIED = [
    pytest.param({"message": "Rate limit reached", "code": 429}, False, id="code-429"),
    pytest.param({"message": "Rate limit", "code": "rate_limit_exceeded"}, False, id="code-word"),
    pytest.param({"message": "Overloaded", "type": "overloaded_error"}, True, id="event-type"),
    pytest.param({"message": "Upstream down", "status": 503}, True, id="event-status"),
    pytest.param({"message": "Something broke"}, False, id="no-status"),
]


@pytest.mark.parametrize(("error", "event"), RETRIED)
async def test_a_rate_limit_or_server_error_in_the_stream_is_retried(
    fake_openai: FakeOpenAI, error: dict[str, Any], event: bool
) -> None:
    fake_openai.script(
        stream_error_reply(error, text="The refund", event=event), text_reply("Recovered.")
    )
    events = await _collect(_model(fake_openai))
    restart = next(i for i, e in enumerate(events) if isinstance(e, StreamRestart))
    reason = next(e.reason for e in events if isinstance(e, StreamRestart))
    assert error["message"] in reason
    assert _text(events[restart + 1 :]) == "Recovered."
    assert len(fake_openai.requests) == 2


async def test_a_retried_stream_error_that_persists_gives_its_status(
    fake_openai: FakeOpenAI,
) -> None:
    error = {"message": "Rate limit reached", "code": 429}
    fake_openai.script(*[stream_error_reply(error)] * 2)
    with pytest.raises(ModelError, match=r"after 2 tries \(HTTP 429: Rate limit reached"):
        await _collect(_model(fake_openai, max_retries=1))


# Malformed chunks


MALFORMED = [
    pytest.param(raw_chunk_reply(b"[1]", text="Hi"), "a chunk that is a list", id="list"),
    pytest.param(raw_chunk_reply(b"{not json", text="Hi"), "not JSON", id="not-json"),
    pytest.param(deltas_reply([{"content": 42}]), "delta.content was a number", id="int-text"),
    pytest.param(
        deltas_reply(
            [{"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": {"a": 1}}}]}]
        ),
        "arguments was an object",
        id="object-arguments",
    ),
    pytest.param(
        deltas_reply([{"tool_calls": [{"index": 0, "id": 7, "function": {"name": "x"}}]}]),
        "id was a number",
        id="int-id",
    ),
    pytest.param(text_reply("Hi", usage="lots"), "usage was text", id="text-usage"),
    pytest.param(deltas_reply([{"content": [7]}]), "content part was a number", id="int-part"),
    pytest.param(
        deltas_reply([{"content": "ok"}], usage={"prompt_tokens": "9"}),
        "prompt_tokens",
        id="text-count",
    ),
]


@pytest.mark.parametrize(("reply", "problem"), MALFORMED)
async def test_a_malformed_chunk_is_a_clear_model_error_and_one_operator_line(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture, reply: Any, problem: str
) -> None:
    fake_openai.script(reply, text_reply("not asked for"))
    with (
        caplog.at_level(logging.ERROR, logger="helpline"),
        pytest.raises(MalformedStream) as raised,
    ):
        await _collect(_model(fake_openai))
    assert problem in str(raised.value) and "try again" in str(raised.value)
    assert len(fake_openai.requests) == 1  # the same provider would send the same again
    (logged,) = [r for r in caplog.records if r.name == "helpline"]
    line = logged.getMessage()
    assert "\n" not in line and problem in line and "fake-model at http" in line
    assert len(line) < 500


async def test_a_huge_malformed_chunk_is_logged_truncated(
    fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.script(raw_chunk_reply(b'["' + b"x" * 100_000 + b'"]'))
    with caplog.at_level(logging.ERROR, logger="helpline"), pytest.raises(MalformedStream):
        await _collect(_model(fake_openai))
    (logged,) = [r for r in caplog.records if r.name == "helpline"]
    assert len(logged.getMessage()) < 500


async def test_empty_data_lines_and_other_events_are_skipped(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(raw_chunk_reply(b'\n\nevent: ping\ndata: {"type": "ping"}', text="Hi"))
    events = await _collect(_model(fake_openai))
    assert _text(events) == "Hi" and events[-1] == Finish("stop")


# Tool calls


CALLS = [
    ("call_a", "lookup_order", json.dumps({"order_id": "DD-10234"})),
    ("call_b", "create_customer_ticket", json.dumps({"name": "Omar", "issue": "cannot log in"})),
]


async def test_calls_reusing_index_zero_keep_their_own_fragments(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_call_reply(CALLS, shape="same_index", fragment_size=5))
    events = await _collect(_model(fake_openai))
    calls = [e.call for e in events if isinstance(e, ToolCallReady)]
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == CALLS


SIGNATURE = {"extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}}}


@pytest.mark.parametrize("shape", ["xai", "openai", "no_index"])
async def test_a_providers_own_keys_on_a_call_are_kept(
    fake_openai: FakeOpenAI, shape: ToolCallShape
) -> None:
    extra = {"call_a": {**SIGNATURE, "function": {"thought": True}}}
    fake_openai.script(tool_call_reply(CALLS, shape=shape, extra=extra))
    events = await _collect(_model(fake_openai))
    first, second = (e.call.model_dump(mode="json") for e in events if isinstance(e, ToolCallReady))
    assert first == {
        "id": "call_a",
        "type": "function",
        "function": {"name": "lookup_order", "arguments": CALLS[0][2], "thought": True},
        **SIGNATURE,
    }
    assert "extra_content" not in second and "thought" not in second["function"]


async def test_a_thought_signature_goes_back_to_the_provider_and_is_stored(
    fake_openai: FakeOpenAI, sqlite_store: Store
) -> None:
    arguments = json.dumps({"name": "Omar", "issue": "Cannot log in"})
    fake_openai.script(
        tool_call_reply(
            [("call_g", "create_customer_ticket", arguments)],
            shape="xai",
            extra={"call_g": SIGNATURE},
        ),
        text_reply("Your ticket is filed."),
    )
    model = _model(fake_openai)
    assistant = Assistant(model, sqlite_store, [create_customer_ticket])
    conversation_id = assistant.new_conversation()
    await _chat(assistant, conversation_id, "I can't log in, I'm Omar")
    await model.aclose()
    sent = next(m for m in fake_openai.requests[1].body["messages"] if m.get("tool_calls"))
    assert sent["tool_calls"][0]["extra_content"] == SIGNATURE["extra_content"]
    stored = next(
        m for m in sqlite_store.conversations.messages(conversation_id) if m.get("tool_calls")
    )
    assert stored == sent and from_wire(stored).to_wire() == stored


# Usage and the output limit


async def test_the_providers_total_reasoning_and_cached_tokens_are_kept(
    fake_openai: FakeOpenAI,
) -> None:
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 5,
        "total_tokens": 165,
        "prompt_tokens_details": {"cached_tokens": 32},
        "completion_tokens_details": {"reasoning_tokens": 120},
    }
    fake_openai.script(text_reply("Done.", usage=usage))
    events = await _collect(_model(fake_openai))
    assert next(e for e in events if isinstance(e, Usage)) == Usage(40, 5, 165, 120, 32)


def test_usage_adds_up_and_totals_itself_when_the_provider_does_not() -> None:
    assert Usage(10, 5).total_tokens == 15
    assert Usage(10, 5, 100, 85, 4) + Usage(1, 2) == Usage(11, 7, 103, 85, 4)


async def test_an_output_limit_is_always_sent(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("a"), text_reply("b"))
    await _collect(_model(fake_openai))
    await _collect(_model(fake_openai, max_output_tokens=300))
    assert [r.body["max_tokens"] for r in fake_openai.requests] == [4096, 300]


async def test_an_answer_cut_at_the_output_limit_ends_the_turn_cleanly(
    fake_openai: FakeOpenAI, sqlite_store: Store
) -> None:
    fake_openai.script(text_reply("Refunds take five", finish_reason="length"))
    model = _model(fake_openai)
    assistant = Assistant(model, sqlite_store)
    conversation_id = assistant.new_conversation()
    events = await _chat(assistant, conversation_id, "How long do refunds take?")
    await model.aclose()
    assert "".join(e.delta for e in events if isinstance(e, TurnText)) == "Refunds take five"
    assert isinstance(events[-1], TurnDone)
    stored = sqlite_store.conversations.messages(conversation_id)[-1]
    assert stored == {"role": "assistant", "content": "Refunds take five"}


async def test_a_tool_call_cut_at_the_output_limit_is_not_run(
    fake_openai: FakeOpenAI, sqlite_store: Store
) -> None:
    cut = '{"name": "Omar", "issue": "Cannot log'
    fake_openai.script(
        tool_call_reply([("call_c", "create_customer_ticket", cut)], finish_reason="length"),
        text_reply("Could you tell me the issue again?"),
    )
    model = _model(fake_openai)
    assistant = Assistant(model, sqlite_store, [create_customer_ticket])
    conversation_id = assistant.new_conversation()
    events = await _chat(assistant, conversation_id, "I can't log in, I'm Omar")
    await model.aclose()
    assert isinstance(events[-1], TurnDone)
    assert sqlite_store.tickets.find() == []
    answer = fake_openai.requests[1].body["messages"][-1]
    assert answer["role"] == "tool" and "not valid JSON" in answer["content"]


# Servers that number tool calls afresh in every reply


async def test_a_server_that_numbers_calls_per_reply_files_each_new_ticket(
    fake_openai: FakeOpenAI, sqlite_store: Store
) -> None:
    """llama.cpp and others call every reply's first tool call ``call_0``: the second
    ticket of a conversation is filed, not answered with the first one's result."""
    ticket = '{"name": "Ana", "issue": "%s"}'
    fake_openai.script(
        tool_call_reply([("call_0", "create_customer_ticket", ticket % "cannot log in")]),
        text_reply("Filed."),
        tool_call_reply([("call_0", "create_customer_ticket", ticket % "charged twice")]),
        text_reply("Filed that too."),
    )
    assistant = Assistant(_model(fake_openai), sqlite_store, [create_customer_ticket], "Help.")
    conversation_id = assistant.new_conversation()
    await _chat(assistant, conversation_id, "I cannot log in, I'm Ana")
    await _chat(assistant, conversation_id, "and I was charged twice")
    issues = sorted(t.issue for t in sqlite_store.tickets.find(conversation_id=conversation_id))
    assert issues == ["cannot log in", "charged twice"]
    stored = sqlite_store.conversations.messages(conversation_id)
    results = [m["content"] for m in stored if m["role"] == "tool"]
    assert "charged twice" in results[1] and results[0] != results[1]
    # The model reads its own ids back, exactly as it sent them.
    assert [m["tool_call_id"] for m in stored if m["role"] == "tool"] == ["call_0", "call_0"]
