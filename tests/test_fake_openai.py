"""The fake OpenAI server speaks the real protocol: the official SDK and raw httpx agree."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionMessageParam

from tests.fake_openai import (
    FakeOpenAI,
    ToolCallShape,
    content_parts_reply,
    cut_reply,
    deltas_reply,
    error_reply,
    json_reply,
    raw_chunk_reply,
    stall_reply,
    stream_error_reply,
    text_reply,
    tool_call_reply,
)

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
CALLS = [
    ("call_1", "create_customer_ticket", '{"name":"Omar","issue":"login"}'),
    ("call_2", "analyze_receipt_image", '{"image_url":"https://example.com/r.png"}'),
]


def _client(server: FakeOpenAI, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=max_retries)


def _raw_stream(server: FakeOpenAI, body: dict[str, Any]) -> tuple[httpx.Response, list[str]]:
    """POST a streaming request; the response and its raw SSE lines."""
    with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body) as response:
        return response, list(response.iter_lines())


def _chunks(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: {")]


def test_streamed_text_assembles_with_usage_through_the_sdk(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("Hello there, Omar!"))
    stream = _client(fake_openai).chat.completions.create(
        model="grok-4-fast", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, Omar!"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.model for c in chunks} == {"grok-4-fast"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert usage.completion_tokens == 3  # "Hello", " there,", " Omar!"
    assert usage.total_tokens == usage.prompt_tokens + 3 and usage.prompt_tokens > 0


def test_wire_format_is_sse_data_lines_ending_in_done(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply(["Hel", "lo"], reasoning="User greets."))
    response, lines = _raw_stream(fake_openai, {"model": "m", "messages": HI, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert all(line.startswith("data: ") for line in lines[::2])
    assert lines[1::2] == [""] * (len(lines) // 2)  # each event ends with a blank line
    assert lines[-2:] == ["data: [DONE]", ""]
    chunks = _chunks(lines)
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "reasoning_content": "User"},
        {"reasoning_content": " greets."},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * 4 + ["stop"]


@pytest.mark.parametrize("shape", ["xai", "openai", "interleaved"])
def test_tool_call_shapes_reassemble_through_the_sdk_stream(
    fake_openai: FakeOpenAI, shape: ToolCallShape
) -> None:
    fake_openai.script(tool_call_reply(CALLS, shape=shape, text="One moment. "))
    with _client(fake_openai).chat.completions.stream(model="m", messages=HI) as stream:
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "One moment. "
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert calls == CALLS


def _tool_deltas(lines: list[str]) -> list[dict[str, Any]]:
    return [d for c in _chunks(lines) for d in c["choices"][0]["delta"].get("tool_calls", [])]


def test_xai_shape_sends_each_call_whole(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_call_reply(CALLS, shape="xai"))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    assert _tool_deltas(lines) == [
        {"index": i, "id": c, "type": "function", "function": {"name": n, "arguments": a}}
        for i, (c, n, a) in enumerate(CALLS)
    ]


def test_openai_shape_fragments_are_keyed_by_index_only(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_call_reply(CALLS[:1], shape="openai", fragment_size=5))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    header, *fragments = _tool_deltas(lines)
    assert header == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "create_customer_ticket", "arguments": ""},
    }
    assert len(fragments) == 7 and all(set(f) == {"index", "function"} for f in fragments)
    assert "".join(f["function"]["arguments"] for f in fragments) == CALLS[0][2]


def test_no_index_shape_omits_index_on_fragments(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_call_reply(CALLS[:1], shape="no_index"))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    header, *fragments = _tool_deltas(lines)
    assert header["index"] == 0 and header["id"] == "call_1"
    assert fragments and all(set(f) == {"function"} for f in fragments)
    assert "".join(f["function"]["arguments"] for f in fragments) == CALLS[0][2]


def test_interleaved_shape_alternates_indexes(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_call_reply(CALLS, shape="interleaved", fragment_size=10))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    indexes = [d["index"] for d in _tool_deltas(lines)]
    assert indexes[:6] == [0, 1, 0, 1, 0, 1]
    assert indexes.count(0) == 5 and indexes.count(1) == 6  # header + 4 and header + 5 fragments


def test_same_index_shape_tells_calls_apart_only_by_id(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(tool_call_reply(CALLS, shape="same_index", fragment_size=50))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    deltas = _tool_deltas(lines)
    assert {d["index"] for d in deltas} == {0}
    assert [d.get("id") for d in deltas] == ["call_1", None, "call_2", None]


def test_extra_keys_ride_on_a_calls_first_chunk(fake_openai: FakeOpenAI) -> None:
    signature = {"extra_content": {"google": {"thought_signature": "c2ln"}}}
    extra = {"call_2": {**signature, "function": {"thought": True}}}
    fake_openai.script(tool_call_reply(CALLS, shape="openai", fragment_size=50, extra=extra))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    header_1, _, header_2, fragment = _tool_deltas(lines)
    assert (
        "extra_content" not in header_1 and header_2["extra_content"] == signature["extra_content"]
    )
    assert header_2["function"]["thought"] is True and set(fragment) == {"index", "function"}


def test_content_parts_and_reasoning_fields_are_streamed_as_given(fake_openai: FakeOpenAI) -> None:
    parts: list[dict[str, Any]] = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
        {"type": "text", "text": "Hi"},
    ]
    fake_openai.script(
        content_parts_reply(parts), text_reply("ok", reasoning="hm", reasoning_field="reasoning")
    )
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    assert [c["choices"][0]["delta"].get("content") for c in _chunks(lines)] == [
        [p] for p in parts
    ] + [None]
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    assert _chunks(lines)[0]["choices"][0]["delta"] == {"role": "assistant", "reasoning": "hm"}


def test_an_error_chunk_inside_a_stream_reaches_the_sdk(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(stream_error_reply({"message": "Bad tool schema", "code": 400}, text="Hi"))
    stream = _client(fake_openai).chat.completions.create(model="m", messages=HI, stream=True)
    with pytest.raises(openai.APIError, match="Bad tool schema"):
        list(stream)


def test_an_error_event_ends_the_stream_without_done(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(stream_error_reply({"status": 503, "message": "Overloaded"}, event=True))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    assert lines[-3:] == ["event: error", 'data: {"status":503,"message":"Overloaded"}', ""]
    assert "data: [DONE]" not in lines


def test_a_raw_chunk_is_sent_verbatim_before_the_finish(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(raw_chunk_reply(b"[1]", text="Hi"))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    assert lines.index("data: [1]") == 2 and lines[-2] == "data: [DONE]"


def test_usage_and_finish_reason_can_be_the_providers_own(fake_openai: FakeOpenAI) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 40,
             "completion_tokens_details": {"reasoning_tokens": 29}}  # fmt: skip
    fake_openai.script(text_reply("Cut sho", finish_reason="length", usage=usage))
    stream = _client(fake_openai).chat.completions.create(
        model="m", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.model_dump(exclude_none=True) == usage


def test_deltas_are_streamed_verbatim(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(deltas_reply([{"content": 42}, {"content": "x"}]))
    _, lines = _raw_stream(fake_openai, {"messages": HI, "stream": True})
    deltas = [c["choices"][0]["delta"] for c in _chunks(lines)]
    assert deltas == [{"role": "assistant", "content": 42}, {"content": "x"}, {}]


def test_non_streamed_replies_are_one_completion(fake_openai: FakeOpenAI) -> None:
    receipt = {"date": "2024-05-01", "items": [], "currency": "EUR", "total_in_cents": 0}
    fake_openai.script(json_reply(receipt), tool_call_reply(CALLS, shape="xai"))
    client = _client(fake_openai)
    completion = client.chat.completions.create(
        model="m", messages=HI, response_format={"type": "json_object"}
    )
    assert completion.object == "chat.completion"
    assert json.loads(completion.choices[0].message.content or "") == receipt
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    message = client.chat.completions.create(model="m", messages=HI).choices[0].message
    calls = message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == CALLS  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_errors_reach_the_sdk_with_their_status(
    fake_openai: FakeOpenAI, status: int, error: type[openai.APIStatusError]
) -> None:
    fake_openai.script(error_reply(status, "Slow down."))
    with pytest.raises(error) as raised:
        _client(fake_openai).chat.completions.create(model="m", messages=HI)
    assert raised.value.status_code == status
    assert raised.value.body == {
        "message": "Slow down.",
        "type": "server_error" if status >= 500 else "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_error_headers_are_sent_and_the_sdk_retries_after_them(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(error_reply(429, headers={"retry-after": "0"}))
    response = httpx.post(f"{fake_openai.base_url}/chat/completions", json={"messages": HI})
    assert response.status_code == 429 and response.headers["retry-after"] == "0"
    assert "429 Too Many Requests" in response.json()["error"]["message"]

    fake_openai.script(error_reply(408, headers={"retry-after": "0"}), text_reply("ok"))
    completion = _client(fake_openai, max_retries=1).chat.completions.create(model="m", messages=HI)
    assert completion.choices[0].message.content == "ok"
    assert len(fake_openai.requests) == 3


def test_cut_stream_breaks_on_the_client(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(cut_reply("one two three four", after=2), cut_reply("one two", after=1))
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError) as raised:
        for chunk in _client(fake_openai).chat.completions.create(
            model="m", messages=HI, stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["one", " two"]
    assert "incomplete chunked read" in str(raised.value.__cause__)

    with pytest.raises(httpx.RemoteProtocolError):
        _raw_stream(fake_openai, {"messages": HI, "stream": True})


def test_cut_non_streamed_reply_is_an_incomplete_body(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(cut_reply("one two", after=0))
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{fake_openai.base_url}/chat/completions", json={"messages": HI})


def test_stall_trips_the_client_read_timeout(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(stall_reply(30))
    timeout = httpx.Timeout(5, read=0.2)
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream(
            "POST",
            f"{fake_openai.base_url}/chat/completions",
            json={"stream": True},
            timeout=timeout,
        ) as response,
    ):
        assert response.status_code == 200
        response.read()


def test_exhausted_script_is_a_loud_500(fake_openai: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError, match="script ran out: chat request #1"):
        _client(fake_openai).chat.completions.create(model="m", messages=HI)


def test_callable_reply_answers_from_the_request(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(lambda body: text_reply(f"You said {body['messages'][-1]['content']}."))
    completion = _client(fake_openai).chat.completions.create(model="m", messages=HI)
    assert completion.choices[0].message.content == "You said hi."


def test_requests_are_recorded_in_order_with_headers(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("a"), text_reply("b"))
    client = _client(fake_openai)
    client.chat.completions.create(model="first", messages=HI)
    client.chat.completions.create(
        model="second", messages=[*HI, {"role": "assistant", "content": "a"}], stream=True
    ).close()
    assert [r.body["model"] for r in fake_openai.requests] == ["first", "second"]
    assert fake_openai.requests[0].body["messages"][-1]["content"] == "hi"
    assert fake_openai.requests[1].body["stream"] is True
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-test"


def test_models_are_listed_and_unknown_routes_are_404(fake_openai: FakeOpenAI) -> None:
    assert [m.id for m in _client(fake_openai).models.list()] == ["fake-model"]
    response = httpx.get(f"{fake_openai.base_url}/embeddings")
    assert (
        response.status_code == 404
        and "/v1/chat/completions" in response.json()["error"]["message"]
    )
    assert fake_openai.requests == []


def test_bad_request_body_is_a_400_and_not_recorded(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("unused"))
    for content in (b"not json", b"[1, 2]"):
        response = httpx.post(f"{fake_openai.base_url}/chat/completions", content=content)
        assert response.status_code == 400
        assert "not a JSON object" in response.json()["error"]["message"]
    assert fake_openai.requests == []


def test_paced_non_streamed_reply_takes_as_long_as_streaming_it(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(text_reply("one two three four", delay=0.05))
    started = time.monotonic()
    completion = _client(fake_openai).chat.completions.create(model="m", messages=HI)
    assert completion.choices[0].message.content == "one two three four"
    assert time.monotonic() - started >= 0.2


async def test_serves_many_paced_streams_at_once(fake_openai: FakeOpenAI) -> None:
    count = 100
    fake_openai.script(*[text_reply("one two three", delay=0.01)] * count)
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=fake_openai.base_url, limits=limits) as client:

        async def answer() -> str:
            body = {"messages": HI, "stream": True}
            async with client.stream("POST", "/chat/completions", json=body) as response:
                lines = [line async for line in response.aiter_lines()]
            return "".join(c["choices"][0]["delta"].get("content", "") for c in _chunks(lines))

        answers = await asyncio.gather(*(answer() for _ in range(count)))
    assert answers == ["one two three"] * count
