"""The Responses API backend against a fake Responses server over real HTTP: the stream's
events, tools, receipts, retries, continuing stored responses and falling back to the
whole input; and one scenario run on both API styles giving the same conversation."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpline.assistant import Assistant
from helpline.config import ConfigError, Settings
from helpline.doctor import _api_style_check
from helpline.events import TurnDone, TurnEvent, TurnText
from helpline.messages import PROVIDER_KEYS, UserMessage
from helpline.models.base import (
    ChatModel,
    Finish,
    ModelError,
    ModelEvent,
    ResponseRef,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.openai_responses import ResponsesModel, last_request
from helpline.receipts.vision import read_receipt_with_model
from helpline.store import Store
from helpline.support.tickets import create_customer_ticket
from tests.conftest import SHOP_RECEIPT
from tests.fake_openai import (
    FakeOpenAI,
    cut_reply,
    error_reply,
    json_reply,
    raw_chunk_reply,
    text_reply,
    tool_call_reply,
)
from tests.fake_responses import FakeResponses, chat_messages, failed_reply

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look an order up.",
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
    },
}
HELLO = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}]


@pytest.fixture
def fake() -> Iterator[FakeResponses]:
    with FakeResponses() as server:
        yield server


def _model(fake: FakeResponses, **options: Any) -> ResponsesModel:
    return ResponsesModel(fake.base_url, "fake-model", "test-key", backoff=0.01, **options)


async def _events(model: ChatModel, messages: list[dict[str, Any]], **kw: Any) -> list[ModelEvent]:
    try:
        return [event async for event in model.stream(messages, **kw)]
    finally:
        await model.aclose()


def _text(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_text_streams_and_the_request_is_in_the_responses_shape(fake: FakeResponses) -> None:
    fake.script(text_reply("Hello there, friend!", reasoning="The customer greets me."))
    events = await _events(_model(fake), HELLO, tools=[TOOL])

    assert _text(events) == "Hello there, friend!"  # the reasoning summary is never the answer
    assert next(e for e in events if isinstance(e, TextDelta)) == TextDelta("Hello")
    body = fake.requests[0].body
    assert body["input"] == [
        {"type": "message", "role": "system", "content": "Be kind."},
        {"type": "message", "role": "user", "content": "hi"},
    ]
    assert (body["stream"], body["store"], body["max_output_tokens"]) == (True, True, 4096)
    assert "previous_response_id" not in body and "messages" not in body
    assert body["tools"] == [{"type": "function", **TOOL["function"]}]  # flat function tools
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.reasoning_tokens == 4 and usage.completion_tokens == 4 + 3
    ref = next(e for e in events if isinstance(e, ResponseRef))
    assert ref.response_id in fake.stored and ref.previous_response_id is None
    assert events[-1] == Finish("stop")


async def test_text_sent_only_in_the_finished_message_is_the_answer(fake: FakeResponses) -> None:
    fake.text_deltas = False
    fake.script(text_reply("All in one piece."))
    assert _text(await _events(_model(fake), HELLO)) == "All in one piece."


async def test_text_deltas_named_only_by_output_index_are_not_repeated_by_the_finished_item(
    fake: FakeResponses,
) -> None:
    fake.item_ids_in_text_deltas = False  # xAI's delta events carry no item_id
    fake.script(text_reply("Hello there, friend!"))
    assert _text(await _events(_model(fake), HELLO)) == "Hello there, friend!"


async def test_usage_reads_each_field_the_provider_reports(fake: FakeResponses) -> None:
    usage = {
        "input_tokens": 1200,
        "input_tokens_details": {"cached_tokens": 1024},
        "output_tokens": 90,
        "output_tokens_details": {"reasoning_tokens": 60},
        "total_tokens": 1290,
    }
    fake.script(text_reply("ok", usage=usage))
    events = await _events(_model(fake), HELLO)
    assert next(e for e in events if isinstance(e, Usage)) == Usage(1200, 90, 1290, 60, 1024)


@pytest.mark.parametrize("interleaved", [False, True])
async def test_parallel_tool_calls_arrive_in_fragments_and_are_assembled_by_item(
    fake: FakeResponses, interleaved: bool
) -> None:
    fake.interleave_calls = interleaved
    first = '{"order": "A-1001", "note": "the long one, in many fragments"}'
    fake.script(
        tool_call_reply([("call_a", "lookup", first), ("call_b", "lookup", '{"order": "B-7"}')])
    )
    events = await _events(_model(fake), HELLO, tools=[TOOL])
    calls = [e.call for e in events if isinstance(e, ToolCallReady)]
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "lookup", first),
        ("call_b", "lookup", '{"order": "B-7"}'),
    ]
    assert events[-1] == Finish("tool_calls")


async def test_tool_results_answer_their_calls_by_call_id_continuing_the_response(
    fake: FakeResponses,
) -> None:
    fake.script(
        tool_call_reply([("call_a", "lookup", '{"order": "A-1"}'), ("call_b", "lookup", "{}")]),
        text_reply("Both orders are on their way."),
    )
    model = _model(fake)
    events = await _events(model, HELLO, tools=[TOOL])
    ref = next(e for e in events if isinstance(e, ResponseRef))
    calls = [e.call for e in events if isinstance(e, ToolCallReady)]
    history = [
        *HELLO,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [c.model_dump() for c in calls],
            **ref.message_fields(),
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "A-1: shipped"},
        {"role": "tool", "tool_call_id": "call_b", "content": "B: shipped"},
    ]
    answer = await _events(model, history, tools=[TOOL])
    assert _text(answer) == "Both orders are on their way."
    body = fake.requests[1].body
    assert body["previous_response_id"] == ref.response_id
    assert body["input"] == [
        {"type": "function_call_output", "call_id": "call_a", "output": "A-1: shipped"},
        {"type": "function_call_output", "call_id": "call_b", "output": "B: shipped"},
    ]
    assert next(e for e in answer if isinstance(e, ResponseRef)).previous_response_id == (
        ref.response_id
    )
    assert next(e for e in answer if isinstance(e, Usage)).cached_prompt_tokens > 0


@pytest.mark.parametrize(
    ("gone_status", "flat_errors"),
    [(400, False), (404, False), (400, True)],
    ids=["400", "404", "400-as-xai-writes-it"],
)
async def test_an_expired_stored_response_falls_back_to_the_whole_input(
    gone_status: int, flat_errors: bool
) -> None:
    with FakeResponses(gone_status=gone_status, flat_errors=flat_errors) as fake:
        fake.script(text_reply("Hello!"), text_reply("Still here."))
        model = _model(fake)
        first = await _events(model, HELLO)
        ref = next(e for e in first if isinstance(e, ResponseRef))
        fake.expire(ref.response_id or "")
        history = [
            *HELLO,
            {"role": "assistant", "content": "Hello!", **ref.message_fields()},
            {"role": "user", "content": "are you there?"},
        ]
        events = await _events(model, history)
    assert _text(events) == "Still here."
    assert [r.body.get("previous_response_id") for r in fake.requests] == [
        None,
        ref.response_id,
        None,
    ]
    assert [i["content"] for i in fake.requests[2].body["input"]] == [
        "Be kind.",
        "hi",
        "Hello!",
        "are you there?",
    ]
    assert next(e for e in events if isinstance(e, ResponseRef)).previous_response_id is None


async def test_a_stored_response_reported_gone_inside_the_stream_falls_back_too(
    fake: FakeResponses,
) -> None:
    fake.script(
        text_reply("Hello!"),
        failed_reply("previous_response_not_found", "Previous response not found.", event=True),
        text_reply("Still here."),
    )
    model = _model(fake)
    ref = next(e for e in await _events(model, HELLO) if isinstance(e, ResponseRef))
    history = [
        *HELLO,
        {"role": "assistant", "content": "Hello!", **ref.message_fields()},
        {"role": "user", "content": "are you there?"},
    ]
    events = await _events(model, history)
    assert _text(events) == "Still here."
    assert [len(r.body["input"]) for r in fake.requests] == [2, 1, 4]


async def test_storage_off_sends_the_whole_input_with_the_encrypted_reasoning(
    fake: FakeResponses,
) -> None:
    fake.script(text_reply("Hello!", reasoning="Greet them."), text_reply("Sure."))
    model = _model(fake, store=False)
    first = await _events(model, HELLO)
    ref = next(e for e in first if isinstance(e, ResponseRef))
    assert ref.response_id is None and len(ref.reasoning) == 1  # nothing to continue
    assert ref.reasoning[0]["encrypted_content"].startswith("enc:")
    assert ref.reasoning[0]["summary"] == []  # the readable summary is never kept
    history = [
        *HELLO,
        {"role": "assistant", "content": "Hello!", **ref.message_fields()},
        {"role": "user", "content": "thanks"},
    ]
    await _events(model, history)
    bodies = [r.body for r in fake.requests]
    assert [(b["store"], b["include"]) for b in bodies] == [
        (False, ["reasoning.encrypted_content"])
    ] * 2
    assert "previous_response_id" not in bodies[1] and fake.stored == {}
    assert [i.get("type") for i in bodies[1]["input"]] == [
        "message",
        "message",
        "reasoning",
        "message",
        "message",
    ]
    assert bodies[1]["input"][2] == ref.reasoning[0]


async def test_a_failed_response_is_retried_when_the_provider_may_recover(
    fake: FakeResponses,
) -> None:
    fake.script(
        failed_reply("server_error", "The model crashed.", text="Let me"),
        failed_reply("rate_limit_exceeded", "Slow down.", event=True),
        text_reply("Here you are."),
    )
    events = await _events(_model(fake), HELLO)
    assert StreamRestart in {type(e) for e in events}
    after = events[max(i for i, e in enumerate(events) if isinstance(e, StreamRestart)) + 1 :]
    assert _text(after) == "Here you are." and len(fake.requests) == 3


@pytest.mark.parametrize("beside", [False, True], ids=["in-the-response", "beside-it"])
async def test_a_refused_prompt_fails_at_once_with_a_clear_error(
    fake: FakeResponses, beside: bool
) -> None:
    fake.script(failed_reply("invalid_prompt", "The prompt was flagged.", beside=beside))
    with pytest.raises(ModelError, match=r"400: The prompt was flagged"):
        await _events(_model(fake), HELLO)
    assert len(fake.requests) == 1


async def test_a_cut_stream_restarts_and_the_answer_is_whole(fake: FakeResponses) -> None:
    fake.script(cut_reply("one two three four", after=2), text_reply("one two three four"))
    events = await _events(_model(fake), HELLO)
    restart = next(i for i, e in enumerate(events) if isinstance(e, StreamRestart))
    assert _text(events[:restart]) == "one two"
    assert _text(events[restart:]) == "one two three four"


async def test_429_waits_as_long_as_retry_after_says(fake: FakeResponses) -> None:
    fake.script(error_reply(429, headers={"retry-after-ms": "50"}), text_reply("Done."))
    model = ResponsesModel(fake.base_url, "fake-model", backoff=30.0)  # only retry-after is short
    events = await asyncio.wait_for(_events(model, HELLO), timeout=5)
    assert _text(events) == "Done." and len(fake.requests) == 2


async def test_an_answer_cut_at_the_output_limit_finishes_as_length(fake: FakeResponses) -> None:
    fake.script(text_reply("A long answer that", finish_reason="length"))
    events = await _events(_model(fake), HELLO)
    assert _text(events) == "A long answer that" and events[-1] == Finish("length")


async def test_a_stream_that_is_not_responses_events_is_a_clear_error(fake: FakeResponses) -> None:
    fake.script(raw_chunk_reply(b"not json", text="Hi"))
    with pytest.raises(ModelError, match="could not be read"):
        await _events(_model(fake), HELLO)


async def test_a_receipt_goes_as_an_input_image_with_a_json_schema_format(
    fake: FakeResponses,
) -> None:
    receipt = {
        "date": "2018-12-25",
        "currency": "MYR",
        "items": [{"name": "Pen", "quantity": 1, "price_in_cents": 8090}],
        "total_in_cents": 8090,
    }
    fake.script(json_reply(receipt))
    model = _model(fake, store=False)
    try:
        read = await read_receipt_with_model(model, SHOP_RECEIPT.read_bytes(), "image/jpeg")
    finally:
        await model.aclose()
    assert read.total_in_cents == 8090
    body = fake.requests[0].body
    user = body["input"][1]["content"]
    assert user[0] == {"type": "input_text", "text": "Read this receipt."}
    assert user[1]["type"] == "input_image" and user[1]["detail"] == "high"
    assert user[1]["image_url"].startswith("data:image/jpeg;base64,")
    text_format = body["text"]["format"]
    assert (text_format["type"], text_format["name"], text_format["strict"]) == (
        "json_schema",
        "receipt",
        True,
    )
    assert "total_in_cents" in text_format["schema"]["properties"]


async def test_deleting_forgets_the_stored_responses(fake: FakeResponses) -> None:
    fake.script(text_reply("one"), text_reply("two"))
    model = _model(fake)
    ids: list[str] = []
    for _ in range(2):
        events = await _events(model, HELLO)
        ids.append(next(e for e in events if isinstance(e, ResponseRef)).response_id or "")
    try:
        assert await model.forget([*ids, "resp_never_was"]) == 3  # a missing one is gone
    finally:
        await model.aclose()
    assert fake.deleted == ids and fake.stored == {}


def test_the_api_style_follows_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("XAI_API_KEY", "HELPLINE_BASE_URL", "HELPLINE_API_STYLE", "HELPLINE_XAI_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HELPLINE_BASE_URL", "http://vllm:8000/v1")
    assert isinstance(Settings.from_env(tmp_path / ".env").build_model(), OpenAICompatModel)
    monkeypatch.setenv("HELPLINE_API_STYLE", "responses")
    monkeypatch.setenv("HELPLINE_XAI_STORE", "false")
    model = Settings.from_env(tmp_path / ".env").build_model()
    assert isinstance(model, ResponsesModel) and model.store is False
    monkeypatch.setenv("HELPLINE_API_STYLE", "graphql")
    with pytest.raises(ConfigError, match="HELPLINE_API_STYLE is 'graphql'; set it to responses"):
        Settings.from_env(tmp_path / ".env")
    monkeypatch.setenv("HELPLINE_API_STYLE", "chat")
    monkeypatch.setenv("HELPLINE_XAI_STORE", "perhaps")
    with pytest.raises(ConfigError, match="HELPLINE_XAI_STORE is 'perhaps'"):
        Settings.from_env(tmp_path / ".env")


# One scenario on both API styles: the same script, the same conversation and tickets.


def _scenario_script(server: FakeOpenAI | FakeResponses) -> None:
    def confirm(body: dict[str, Any]) -> Any:
        ticket = body["messages"][-1]["content"]
        return text_reply(f"Thanks Omar! {ticket.split(' (')[0]} is on its way to our team.")

    args = '{"name": "Omar", "issue": "Cannot log in"}'
    server.script(
        text_reply("I'm sorry you can't log in. Could you tell me your name?"),
        tool_call_reply([("call_omar", "create_customer_ticket", args)], shape="openai"),
        confirm,
        text_reply("Glad it works again!"),
    )


async def _say(assistant: Assistant, conversation_id: str, text: str) -> list[TurnEvent]:
    async def collect(stream: AsyncIterator[TurnEvent]) -> list[TurnEvent]:
        return [event async for event in stream]

    stream = assistant.run_turn(conversation_id, UserMessage(content=text))
    return await asyncio.wait_for(collect(stream), timeout=10)


async def _run_scenario(model: ChatModel, store: Store) -> dict[str, Any]:
    assistant = Assistant(model, store, [create_customer_ticket], "You are Helpline.")
    conversation_id = assistant.new_conversation()
    said = []
    try:
        for text in ("I can't log in", "Omar"):
            events = await _say(assistant, conversation_id, text)
            assert isinstance(events[-1], TurnDone), events
            said.append("".join(e.delta for e in events if isinstance(e, TurnText)))
        store.conversations.add_agent_reply(conversation_id, "Ana here: I reset your password.")
        store.conversations.set_status(conversation_id, "active")
        events = await _say(assistant, conversation_id, "it works now, thanks")
        said.append("".join(e.delta for e in events if isinstance(e, TurnText)))
    finally:
        await model.aclose()
    return {
        "said": said,
        "messages": store.conversations.messages(conversation_id),
        "tickets": [(t.id, t.name, t.issue, t.status) for t in store.tickets.find()],
    }


def _without_provider_keys(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k not in PROVIDER_KEYS} for m in messages]


async def test_the_same_scenario_gives_the_same_conversation_on_both_api_styles(
    store: Store, tmp_path: Path
) -> None:
    with FakeOpenAI() as chat_server, FakeResponses() as responses_server:
        _scenario_script(chat_server)
        _scenario_script(responses_server)
        chat_store = Store.open(f"sqlite:///{tmp_path / 'chat.db'}")
        try:
            chat = await _run_scenario(
                OpenAICompatModel(chat_server.base_url, "fake-model"), chat_store
            )
        finally:
            chat_store.close()
        responses = await _run_scenario(
            ResponsesModel(responses_server.base_url, "fake-model"), store
        )

    assert (
        responses["said"]
        == chat["said"]
        == [
            "I'm sorry you can't log in. Could you tell me your name?",
            "Thanks Omar! Ticket #1 created for Omar is on its way to our team.",
            "Glad it works again!",
        ]
    )
    assert responses["tickets"] == chat["tickets"] == [(1, "Omar", "Cannot log in", "open")]
    assert _without_provider_keys(responses["messages"]) == chat["messages"]
    # Each style's provider saw exactly the stored conversation.
    assert chat_server.requests[-1].body["messages"] == chat["messages"][:-1]
    assert (
        responses_server.requests[-1].messages
        == [
            {k: v for k, v in m.items() if k != "name"}  # items carry no names
            for m in _without_provider_keys(responses["messages"][:-1])
        ]
    )

    # The Responses turns continued the stored response while only new input followed it;
    # the person's reply in between made the last turn send the whole conversation.
    sent = [r.body for r in responses_server.requests]
    replies = [m for m in responses["messages"] if m["role"] == "assistant" and "name" not in m]
    assert [m["response_id"] for m in replies] == list(responses_server.stored)
    assert [b.get("previous_response_id") for b in sent] == [
        None,
        replies[0]["response_id"],
        replies[1]["response_id"],
        None,
    ]
    assert [m.get("previous_response_id") for m in replies] == [
        b.get("previous_response_id") for b in sent
    ]
    assert [i["type"] for i in sent[2]["input"]] == ["function_call_output"]
    assert last_request(responses["messages"]) == {"input": sent[3]["input"]}
    assert last_request(chat["messages"]) is None
    assert chat_messages(sent[3]["input"]) == [
        {k: v for k, v in m.items() if k != "name"} for m in chat["messages"][:-1]
    ]


# The command line: the API style in use, the transcript, and deletion at the provider.


def _helpline(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "helpline.cli", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=60)


def test_doctor_says_which_api_style_is_in_use() -> None:
    def detail(**settings: Any) -> str:
        check = _api_style_check(Settings(**settings))
        assert check is not None and check.ok
        return check.detail

    assert detail(xai_api_key="k").startswith("Responses API (POST /responses): turns continue")
    assert "storage off (HELPLINE_XAI_STORE=false)" in detail(xai_api_key="k", xai_store=False)
    assert detail(base_url="http://vllm/v1").startswith("chat completions")
    assert detail(base_url="http://vllm/v1", api_style="responses").startswith("Responses API")
    assert _api_style_check(Settings()) is None  # the offline assistant speaks no API


def _cli_env(base_url: str, style: str, database: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    return {
        **clean,
        "HELPLINE_BASE_URL": base_url,
        "HELPLINE_API_STYLE": style,
        "HELPLINE_MODEL": "fake-model",
        "HELPLINE_DATABASE_URL": f"sqlite:///{database}",
        "NO_COLOR": "1",
    }


def _cli_scenario(env: dict[str, str]) -> tuple[str, dict[str, Any], list[Any]]:
    """``helpline chat`` through the seed conversation; the conversation's id, its
    transcript (--json) and the tickets (--json, without their times)."""
    chat = _helpline(env, "chat", stdin="I can't log in\nOmar\nexit\n")
    assert chat.returncode == 0, chat.stderr
    assert "Thanks Omar! Ticket #1 created for Omar is on its way" in chat.stdout
    shown = json.loads(_helpline(env, "transcript", "--json").stdout)
    tickets = json.loads(_helpline(env, "tickets", "list", "--json").stdout)
    for ticket in tickets:
        for key in ("created_at", "updated_at", "conversation_id"):
            ticket.pop(key)
    return chat.stderr.split("--conversation ")[1].split()[0], shown, tickets


def test_the_command_line_gives_the_same_transcripts_and_tickets_on_both_api_styles(
    fake: FakeResponses, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    _scenario_script(fake_openai)
    _scenario_script(fake)
    _, chat_shown, chat_tickets = _cli_scenario(
        _cli_env(fake_openai.base_url, "chat", tmp_path / "chat.db")
    )
    env = _cli_env(fake.base_url, "responses", tmp_path / "responses.db")
    conversation, shown, tickets = _cli_scenario(env)

    assert tickets == chat_tickets and len(tickets) == 1
    transcript = shown["messages"]
    assert _without_provider_keys(transcript) == chat_shown["messages"]
    assert fake_openai.requests[-1].body["messages"] == chat_shown["messages"][:-1]
    assert "responses_request" not in chat_shown
    answers = [m for m in transcript if m["role"] == "assistant"]
    assert [m["response_id"] for m in answers] == list(fake.stored)
    assert [m.get("previous_response_id") for m in answers] == [
        r.body.get("previous_response_id") for r in fake.requests
    ]
    last = fake.requests[-1].body  # the transcript shows exactly what was sent
    assert shown["responses_request"] == {
        "previous_response_id": last["previous_response_id"],
        "input": last["input"],
    }
    assert [i["type"] for i in last["input"]] == ["function_call_output"]

    deleted = _helpline(env, "conversations", "delete", conversation, "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert sorted(fake.deleted) == sorted(m["response_id"] for m in answers)
    assert fake.stored == {}


def test_the_transcript_says_when_a_request_continued_a_stored_response() -> None:
    from io import StringIO

    from rich.console import Console

    from helpline.views import print_messages

    messages = [
        *HELLO,
        {"role": "assistant", "content": "Hello!", "response_id": "resp_1"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": "Welcome.", "previous_response_id": "resp_1"},
    ]
    out = StringIO()
    print_messages(Console(file=out, width=200), messages)
    shown = out.getvalue()
    assert "#4 assistant\n(sent with previous_response_id resp_1: only the messages after #2)" in (
        shown
    )
    assert shown.count("previous_response_id") == 1


def test_the_server_deletes_a_conversations_stored_responses(
    fake: FakeResponses, sqlite_store: Store
) -> None:
    import httpx

    from helpline.server import create_app
    from helpline.server.testing import LiveServer

    fake.script(text_reply("Hello!"), text_reply("Hello again!"))
    assistant = Assistant(_model(fake), sqlite_store, [create_customer_ticket], "Be kind.")
    with LiveServer(create_app(assistant, Settings(admin_key="admin-secret"))) as server:
        created = httpx.post(server.url + "/api/conversations").json()
        url = f"{server.url}/api/conversations/{created['id']}"
        for text in ("hi", "hello?"):
            answer = httpx.post(
                f"{url}/messages",
                json={"text": text},
                headers={"Authorization": f"Bearer {created['token']}"},
                timeout=30,
            )
            assert answer.status_code == 200 and "Hello" in answer.text
        kept = list(fake.stored)
        assert len(kept) == 2 and fake.requests[1].body["previous_response_id"] == kept[0]
        customer = httpx.get(url, headers={"Authorization": f"Bearer {created['token']}"})
        agent = httpx.get(url, headers={"Authorization": "Bearer admin-secret"})
        assert kept[1] not in customer.text and "response_id" not in customer.text
        assert kept[1] in agent.text  # the desk sees exactly what was stored
        deleted = httpx.delete(url, headers={"Authorization": "Bearer admin-secret"})
    assert deleted.status_code == 204
    assert fake.deleted == kept and fake.stored == {}
