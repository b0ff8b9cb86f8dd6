"""The OpenAI-compatible backend against a real fake server over HTTP/SSE."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpline.models.base import (
    Finish,
    ModelError,
    ModelEvent,
    ResponseFormat,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.models.openai_compat import OpenAICompatModel, ToolCallAssembler
from tests.fake_openai import (
    FakeOpenAI,
    cut_reply,
    error_reply,
    stall_reply,
    text_reply,
    tool_call_reply,
)

HELLO = [{"role": "user", "content": "hi"}]


def _model(server: FakeOpenAI, **options: Any) -> OpenAICompatModel:
    options.setdefault("backoff", 0.01)
    return OpenAICompatModel(server.base_url, "fake-model", "test-key", **options)


async def _collect(model: OpenAICompatModel, **kwargs: Any) -> list[ModelEvent]:
    try:
        return [event async for event in model.stream(kwargs.pop("messages", HELLO), **kwargs)]
    finally:
        await model.aclose()


def _text(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def _calls(events: list[ModelEvent]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (e.call.id, e.call.function.name, json.loads(e.call.function.arguments))
        for e in events
        if isinstance(e, ToolCallReady)
    ]


async def test_streams_text_token_by_token_with_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("Hello there, how can I help?", reasoning="thinking"))
    events = await _collect(_model(fake_openai))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3
    assert _text(events) == "Hello there, how can I help?"
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.completion_tokens > 0 and usage.prompt_tokens > 0
    assert events[-1] == Finish("stop")
    body = fake_openai.requests[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == HELLO
    assert fake_openai.requests[0].headers["authorization"] == "Bearer test-key"


PARALLEL = [
    ("call_a", "lookup_order", json.dumps({"order_id": "DD-10234"})),
    ("call_b", "create_customer_ticket", json.dumps({"name": "Omar", "issue": "cannot log in"})),
    ("call_c", "search_help_center", json.dumps({"query": "refund window for cold food"})),
]


@pytest.mark.parametrize("shape", ["xai", "openai", "no_index", "interleaved"])
async def test_assembles_parallel_tool_calls_in_every_shape(
    fake_openai: FakeOpenAI, shape: str
) -> None:
    fake_openai.script(tool_call_reply(PARALLEL, shape=shape, text="Let me check."))  # type: ignore[arg-type]
    events = await _collect(_model(fake_openai), tools=[{"type": "function"}])
    assert _text(events) == "Let me check."
    assert _calls(events) == [(i, n, json.loads(a)) for i, n, a in PARALLEL]
    assert events[-1] == Finish("tool_calls")
    assert fake_openai.requests[0].body["tools"] == [{"type": "function"}]


def test_whole_calls_reusing_index_zero_stay_separate() -> None:
    assembler = ToolCallAssembler()
    for call_id, name, arguments in PARALLEL:
        assembler.add(
            [{"index": 0, "id": call_id, "function": {"name": name, "arguments": arguments}}]
        )
    assert [c.id for c in assembler.calls()] == ["call_a", "call_b", "call_c"]


def test_missing_ids_are_generated_and_empty_arguments_become_an_object() -> None:
    assembler = ToolCallAssembler()
    assembler.add([{"index": 0, "function": {"name": "list_recent_orders"}}])
    (call,) = assembler.calls()
    assert call.id.startswith("call_") and call.function.arguments == "{}"


@pytest.mark.parametrize("status", [500, 503, 408, 409])
async def test_retries_server_errors(fake_openai: FakeOpenAI, status: int) -> None:
    fake_openai.script(error_reply(status), error_reply(status), text_reply("Recovered."))
    events = await _collect(_model(fake_openai))
    assert _text(events) == "Recovered."
    assert len(fake_openai.requests) == 3


async def test_honours_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error_reply(429, headers={"retry-after": "0.3"}), text_reply("ok"))
    model = _model(fake_openai, backoff=5.0)  # the header, not the backoff, sets the wait
    import time

    started = time.monotonic()
    events = await _collect(model)
    waited = time.monotonic() - started
    assert _text(events) == "ok"
    assert 0.3 <= waited < 3.0


async def test_a_cut_stream_is_retried_and_its_partial_text_discarded(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script(
        cut_reply("The refund window is thirty days", after=3),
        text_reply("The refund window is 30 days."),
    )
    events = await _collect(_model(fake_openai))
    restart = next(i for i, e in enumerate(events) if isinstance(e, StreamRestart))
    after = events[restart + 1 :]
    assert _text(after) == "The refund window is 30 days."
    assert _text(events[:restart])  # something was shown before the cut, and must be replaced


async def test_read_timeout_is_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(stall_reply(2.0), text_reply("after the stall"))
    events = await _collect(_model(fake_openai, read_timeout=0.5))
    assert _text(events) == "after the stall"


async def test_gives_up_with_a_clear_message(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(*[error_reply(503)] * 3)
    with pytest.raises(ModelError, match="did not answer after 3 tries"):
        await _collect(_model(fake_openai, max_retries=2))


async def test_auth_errors_are_not_retried(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error_reply(401, "Incorrect API key provided"))
    with pytest.raises(ModelError, match=r"Incorrect API key.*XAI_API_KEY"):
        await _collect(_model(fake_openai))
    assert len(fake_openai.requests) == 1


async def test_unreachable_server_is_a_clear_error() -> None:
    model = OpenAICompatModel("http://127.0.0.1:9/v1", "m", max_retries=1, backoff=0.01)
    with pytest.raises(ModelError, match="connection failed"):
        await _collect(model)


async def test_structured_output_request(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply('{"total_in_cents": 890}'))
    schema = {"type": "object", "properties": {"total_in_cents": {"type": "integer"}}}
    events = await _collect(_model(fake_openai), response_format=ResponseFormat("receipt", schema))
    assert json.loads(_text(events)) == {"total_in_cents": 890}
    assert fake_openai.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "receipt", "schema": schema, "strict": True},
    }


async def test_a_very_long_chunk_arrives_whole(fake_openai: FakeOpenAI) -> None:
    issue = "x" * 300_000  # one whole call in one chunk, far over any line buffer
    arguments = json.dumps({"name": "Omar", "issue": issue})
    fake_openai.script(
        tool_call_reply([("call_big", "create_customer_ticket", arguments)], shape="xai")
    )
    events = await _collect(_model(fake_openai))
    assert _calls(events) == [
        ("call_big", "create_customer_ticket", {"name": "Omar", "issue": issue})
    ]
