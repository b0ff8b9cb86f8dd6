"""Long conversations within the model's context budget: what each request sends."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest

from helpline.assistant import MODEL_DOWN_REPLY, Assistant
from helpline.context_budget import (
    DEFAULT_CONTEXT_TOKENS,
    ContextBudget,
    ContextTooSmall,
    budget_for,
    context_note,
    message_tokens,
)
from helpline.events import TurnDone, TurnError, TurnText
from helpline.messages import UserMessage
from helpline.models.openai_compat import OpenAICompatModel
from helpline.models.openai_responses import ResponsesModel
from helpline.pricing import ModelCatalog
from helpline.store import Store
from helpline.support.tickets import create_customer_ticket
from helpline.tools import tool
from tests.fake_openai import FakeOpenAI, text_reply, tool_call_reply
from tests.fake_responses import FakeResponses

SYSTEM = {"role": "system", "content": "You are Dishdash's support desk. " * 20}


@tool(activity="Checking the order", done="Order checked")
def order_status(order: str) -> str:
    """Where an order is.

    Args:
        order: The order number.
    """
    return f"Order {order} is on its way, arriving at 19:40."


def _turn(number: int, *, calls: int = 0, response_id: str | None = None) -> list[dict[str, Any]]:
    """One customer message and its answer; with ``calls``, a tool round in between."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": f"Message {number}: my order is late again. " * 4}
    ]
    if calls:
        ids = [f"call_{number}_{i}" for i in range(calls)]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": i,
                        "type": "function",
                        "function": {"name": "order_status", "arguments": '{"order": "DD-1"}'},
                    }
                    for i in ids
                ],
            }
        )
        messages += [
            {"role": "tool", "tool_call_id": i, "content": f"Order DD-{number} is on its way."}
            for i in ids
        ]
    answer: dict[str, Any] = {"role": "assistant", "content": "Sorry about that! " * 8}
    if response_id:
        answer["response_id"] = response_id
    return [*messages, answer]


def _history(turns: int) -> list[dict[str, Any]]:
    history = [SYSTEM]
    for number in range(1, turns + 1):
        history += _turn(number, calls=2 if number % 4 == 0 else 0, response_id=f"resp_{number}")
    return history


def assert_tool_pairs_intact(messages: list[dict[str, Any]]) -> None:
    """Every tool call is answered right after it, and every tool result follows its call."""
    waiting: list[str] = []
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in waiting, f"a result without its call: {message}"
            waiting.remove(message["tool_call_id"])
            continue
        assert not waiting, f"calls {waiting} lost their results"
        if message["role"] == "assistant":
            waiting = [call["id"] for call in message.get("tool_calls") or ()]
    assert not waiting


def test_a_history_that_fits_is_sent_whole_and_unchanged() -> None:
    history = _history(5)
    fitted = ContextBudget(100_000, 4_096).fit(history)
    assert fitted.messages == history and fitted.left_out == 0 and fitted.note is None
    assert fitted.messages[2]["response_id"] == "resp_1"  # chaining stays possible


def test_the_oldest_turns_go_first_and_the_note_keeps_what_tools_established() -> None:
    history = _history(120)
    budget = ContextBudget(6_000, 1_000)
    tools = [order_status.schema()]
    fitted = budget.fit(history, tools)

    assert fitted.left_out > 0
    assert fitted.messages[0] == SYSTEM
    note = fitted.messages[1]
    assert note["role"] == "system" and note["content"] == fitted.note
    assert f"its {fitted.left_out} oldest messages are left out" in note["content"]
    assert "- order_status: Order DD-4 is on its way." in note["content"]  # the first fact
    sent_tail = fitted.messages[2:]
    assert [_strip(m) for m in sent_tail] == [_strip(m) for m in history[1 + fitted.left_out :]]
    assert sent_tail[-1] == {k: v for k, v in history[-1].items() if k != "response_id"}
    assert_tool_pairs_intact(fitted.messages)
    estimated = sum(map(message_tokens, fitted.messages)) + len(orjson.dumps(tools)) / 3
    assert estimated <= budget.input_tokens
    assert fitted.estimated_tokens <= budget.input_tokens
    # A cut history is sent whole: no response id a request could continue from.
    assert not any("response_id" in m for m in fitted.messages)


def _strip(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "response_id"}


def test_a_cut_is_kept_while_it_fits_so_the_start_of_the_request_stays_the_same() -> None:
    budget = ContextBudget(6_000, 1_000)
    history = _history(120)
    first = budget.fit(history)
    grown = [*history, *_turn(121)]
    kept = budget.fit(grown, keep_cut=first.left_out)
    assert kept.left_out == first.left_out and kept.messages[:2] == first.messages[:2]
    fresh = budget.fit(grown)  # without the previous cut: it may move
    assert fresh.estimated_tokens <= budget.input_tokens
    # When the kept cut no longer fits, a new one is made, further along.
    much_longer = [*grown, *(m for n in range(122, 160) for m in _turn(n))]
    moved = budget.fit(much_longer, keep_cut=first.left_out)
    assert moved.left_out > first.left_out
    assert moved.estimated_tokens <= budget.input_tokens


def test_the_note_keeps_the_first_and_the_newest_facts_when_there_are_many() -> None:
    history = [SYSTEM]
    for number in range(1, 400):
        history += _turn(number, calls=1)
    note = context_note(history[1:])
    assert "Order DD-1 is on its way." in note and "Order DD-399 is on its way." in note
    assert re.search(r"\(\d+ more in between\)", note)
    assert len(note) < 3_000


def test_the_note_reads_a_json_result_s_plain_fields_and_skips_errors() -> None:
    left_out = [
        {"role": "user", "content": "here is my receipt"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "analyze_receipt_image", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}},
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "a",
            "content": json.dumps(
                {"date": "2026-11-30", "items": [{"name": "Soda"}], "currency": "EUR", "total_in_cents": 2350}
            ),
        },
        {"role": "tool", "tool_call_id": "b", "content": "Error: no order DD-9 for that email."},
    ]  # fmt: skip
    note = context_note(left_out)
    assert "- analyze_receipt_image: date 2026-11-30, currency EUR, total_in_cents 2350" in note
    assert "DD-9" not in note  # a failed call established nothing


def test_the_customer_s_question_stays_beside_a_long_tool_result_while_it_fits() -> None:
    """Leaving room for later turns never leaves out the question this turn answers."""
    question = {"role": "user", "content": "Where is my order DD-1? " * 20}
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    this_turn = [
        question,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "x" * 6000},
    ]
    history = [SYSTEM, *(m for number in range(40) for m in _turn(number)), *this_turn]
    budget = ContextBudget(6920, 500)  # the question fits, but not in the share a new cut aims at
    fitted = budget.fit(history)
    assert fitted.left_out and fitted.estimated_tokens <= budget.input_tokens
    assert fitted.messages[-3:] == this_turn


def test_a_newest_turn_too_long_for_the_window_is_cut_to_fit() -> None:
    budget = ContextBudget(3_000, 1_000)
    history = [*_history(3), {"role": "user", "content": "x" * 20_000}]
    fitted = budget.fit(history)
    assert fitted.estimated_tokens <= budget.input_tokens
    assert fitted.messages[-1]["content"].endswith("[Cut here to fit the model's context window.]")
    with pytest.raises(ContextTooSmall, match="HELPLINE_CONTEXT_TOKENS"):
        ContextBudget(1_200, 1_000).fit([{"role": "system", "content": "y" * 3_000}, *_turn(1)])


def test_the_budget_comes_from_the_override_the_catalog_or_the_default() -> None:
    catalog = ModelCatalog.load()
    model = OpenAICompatModel("http://127.0.0.1:9/v1", "grok-4.3", max_output_tokens=2_000)
    assert budget_for(model, "grok-4.3", catalog) == ContextBudget(1_000_000, 2_000)
    assert budget_for(model, "grok-4.3", catalog, 50_000) == ContextBudget(50_000, 2_000)
    assert budget_for(model, "my-local-model", catalog) == ContextBudget(
        DEFAULT_CONTEXT_TOKENS, 2_000
    )
    from helpline.config import ConfigError
    from helpline.models.scripted import ScriptedModel

    assert budget_for(ScriptedModel(), "scripted", catalog) is None  # reads no tokens
    with pytest.raises(ConfigError, match="HELPLINE_CONTEXT_TOKENS above"):
        budget_for(model, "grok-4.3", catalog, 1_500)


def _late_answer(body: dict[str, Any]) -> Any:
    """The fake model of a 500-turn conversation: it files a ticket in turn 3, looks orders
    up in parallel every seventh turn, and at the end says which ticket it knows of."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return text_reply("Done: " + last["content"][:60])
    text = last["content"]
    number = int(text.split(":")[0].split()[-1]) if text.startswith("Turn ") else 0
    if number == 3:
        arguments = json.dumps({"name": "Omar", "issue": "Cannot log in to the app"})
        return tool_call_reply([("call_ticket", "create_customer_ticket", arguments)])
    if number and number % 7 == 0:
        calls = [
            (f"call_{number}_{i}", "order_status", f'{{"order": "DD-{number}{i}"}}')
            for i in range(2)
        ]
        return tool_call_reply(calls)
    if "ticket number" in text:
        everything = json.dumps(body["messages"])
        found = re.search(r"Ticket #(\d+) created for Omar", everything)
        return text_reply(f"Your ticket is #{found.group(1)}." if found else "I don't know.")
    return text_reply("I'm sorry to hear that. " * 10)


async def test_a_500_turn_conversation_stays_within_budget_and_remembers_its_ticket(
    sqlite_store: Store, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_openai.script(*[_late_answer] * 700)
    budget = ContextBudget(8_000, 1_000)
    model = OpenAICompatModel(fake_openai.base_url, "fake-model", max_output_tokens=1_000)
    tools = [create_customer_ticket, order_status]
    assistant = Assistant(model, sqlite_store, tools, SYSTEM["content"], budget=budget)
    conversation = assistant.new_conversation()
    try:
        for number in range(1, 501):
            line = f"Turn {number}: my order still has not arrived, " + "please check. " * 6
            if number == 500:
                line = "What was my ticket number again?"
            events = [e async for e in assistant.run_turn(conversation, UserMessage(content=line))]
            assert isinstance(events[-1], TurnDone), events[-1]
    finally:
        await model.aclose()

    requests = [r.body for r in fake_openai.requests]
    assert len(requests) == 500 + 1 + 500 // 7  # and the ticket and order rounds
    schemas = orjson.dumps(requests[0]["tools"])
    for body in requests:
        assert body["max_tokens"] == 1_000  # an output limit is always set
        assert body["messages"][0]["content"] == SYSTEM["content"]  # the system prompt stays
        estimated = sum(map(message_tokens, body["messages"])) + (len(schemas) + 2) // 3
        assert estimated <= budget.input_tokens
        assert len(orjson.dumps(body["messages"])) + len(schemas) <= 3 * budget.input_tokens
        assert_tool_pairs_intact(body["messages"])
    cut = [body for body in requests if body["messages"][1]["role"] == "system"]
    assert len(cut) > 400  # most requests had to leave the oldest turns out
    last = requests[-1]["messages"]
    assert "Ticket #1 created for Omar" in last[1]["content"]  # filed in turn 3, long gone
    assert "Your ticket is #1." in "".join(e.delta for e in events if isinstance(e, TurnText))

    stored = sqlite_store.conversations.messages(conversation)
    assert len(stored) == 1 + 2 * 500 + 2 + 3 * (500 // 7)  # calls and results too
    from helpline.transcripts import print_transcript, read_transcript

    transcript = read_transcript(sqlite_store, conversation)
    assert transcript.messages[:-1] == last  # exactly what the last request sent
    assert len(transcript.left_out) + len(transcript.messages) - 1 == len(stored)
    assert transcript.left_out == stored[1 : 1 + len(transcript.left_out)]
    print_transcript(transcript)
    shown = capsys.readouterr().out
    assert (
        f"Left out of the last request, to fit the model's context window ({len(transcript.left_out)} messages"
        in shown
    )
    assert "What the last request sent:" in shown and "What was my ticket number again?" in shown


async def test_responses_chain_until_a_cut_then_send_the_whole_input(
    sqlite_store: Store,
) -> None:
    with FakeResponses() as server:
        server.script(*[text_reply("Sorry to hear that. " * 12)] * 60)
        model = ResponsesModel(server.base_url, "fake-model", max_output_tokens=1_000)
        budget = ContextBudget(6_000, 1_000)
        assistant = Assistant(model, sqlite_store, [], SYSTEM["content"], budget=budget)
        conversation = assistant.new_conversation()
        try:
            for number in range(1, 61):
                line = f"Turn {number}: still waiting for my order. " * 4
                async for _ in assistant.run_turn(conversation, UserMessage(content=line)):
                    pass
        finally:
            await model.aclose()
    bodies = [r.body for r in server.requests]
    assert bodies[1].get("previous_response_id")  # short: only the new message, chained
    cut = [b for b, r in zip(bodies, server.requests, strict=True) if _left_out(r.messages)]
    assert cut, "the conversation never outgrew its budget"
    for body in cut:
        assert not body.get("previous_response_id")  # the whole (shortened) input instead
    assert all(r.size <= 3 * budget.input_tokens + 2_000 for r in server.requests)


def _left_out(messages: list[dict[str, Any]]) -> bool:
    return any(
        m["role"] == "system" and "oldest messages are left out" in str(m["content"])
        for m in messages
    )


async def test_a_window_that_cannot_hold_the_prompt_is_the_apology_and_says_why(
    sqlite_store: Store, fake_openai: FakeOpenAI
) -> None:
    model = OpenAICompatModel(fake_openai.base_url, "fake-model", max_output_tokens=1_000)
    budget = ContextBudget(1_100, 1_000)
    assistant = Assistant(model, sqlite_store, [], "z" * 2_000, budget=budget)
    conversation = assistant.new_conversation()
    events = [e async for e in assistant.run_turn(conversation, UserMessage(content="hi"))]
    await model.aclose()
    error = events[-1]
    assert isinstance(error, TurnError) and error.message == MODEL_DOWN_REPLY
    assert error.detail is not None and "HELPLINE_CONTEXT_TOKENS" in error.detail
    assert fake_openai.requests == []  # nothing too long was sent
