"""Typed tools: schemas from signatures, validation, and errors the model can read."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import pytest
from pydantic import Field

from helpline.messages import ToolCall
from helpline.store import Store
from helpline.support.tickets import create_customer_ticket
from helpline.tools import (
    INTERNAL_FAILURE,
    ToolContext,
    ToolError,
    Toolset,
    error_result,
    storable_call_id,
    tool,
)


@tool
def refund_item(order_id: str, items: list[str], amount_cents: int = 0) -> dict[str, object]:
    """Refund items from an order.

    Args:
        order_id: The order number, e.g. DD-10234.
        items: Names of the items to refund.
        amount_cents: Override amount.
    """
    return {"order_id": order_id, "items": items, "amount_cents": amount_cents}


@tool(name="slow_lookup")
async def slow_lookup(key: Annotated[str, Field(min_length=2)], context: ToolContext) -> str:
    """Look something up slowly."""
    await asyncio.sleep(0.01)
    return f"{key} in {context.conversation_id}"


@tool
def broken() -> str:
    """Always fails."""
    raise RuntimeError("database exploded")


@tool
def refuses() -> str:
    """Refuses politely."""
    raise ToolError("that order belongs to someone else; ask the customer for their own order id")


def _context(store: Store) -> ToolContext:
    return ToolContext(conversation_id="c1", tool_call_id="t1", store=store)


def test_schema_comes_from_signature_and_docstring() -> None:
    schema = refund_item.schema()
    function = schema["function"]
    assert function["name"] == "refund_item"
    assert function["description"] == "Refund items from an order."
    parameters = function["parameters"]
    assert parameters["required"] == ["order_id", "items"]
    assert parameters["properties"]["items"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "Names of the items to refund.",
    }
    assert parameters["properties"]["order_id"]["description"] == "The order number, e.g. DD-10234."
    assert parameters["additionalProperties"] is False
    assert "title" not in parameters


def test_a_tool_says_what_it_is_doing_for_the_customer() -> None:
    @tool(activity="Checking the kitchen's hours", done="Hours checked")
    def store_hours(city: str) -> str:
        """Opening hours of the kitchen in a city."""
        return f"{city}: 11:00-23:00"

    assert (store_hours.activity, store_hours.done) == (
        "Checking the kitchen's hours",
        "Hours checked",
    )
    assert (refund_item.activity, refund_item.done) == ("Working on it", "Done")


def test_context_parameter_is_hidden_from_the_model() -> None:
    assert "context" not in slow_lookup.schema()["function"]["parameters"]["properties"]


async def _call(store: Store, name: str, arguments: str) -> str:
    toolset = Toolset([refund_item, slow_lookup, broken, refuses])
    return await toolset.call(ToolCall.make("t1", name, arguments), _context(store))


async def test_valid_call_returns_json(sqlite_store: Store) -> None:
    result = await _call(sqlite_store, "refund_item", '{"order_id": "DD-1", "items": ["soda"]}')
    assert result == '{"order_id":"DD-1","items":["soda"],"amount_cents":0}'


async def test_async_tool_receives_context(sqlite_store: Store) -> None:
    assert await _call(sqlite_store, "slow_lookup", '{"key": "abc"}') == "abc in c1"


async def test_errors_become_messages_the_model_can_correct(sqlite_store: Store) -> None:
    cases = {
        ("nope", "{}"): "there is no tool named 'nope'. Available tools: refund_item",
        ("refund_item", "{not json"): "not valid JSON",
        ("refund_item", "[1, 2]"): "arguments for refund_item must be a JSON object",
        ("refund_item", '{"order_id": "DD-1"}'): "items: Field required",
        ("refund_item", '{"order_id": 5, "items": []}'): "order_id: Input should be a valid string",
        ("refund_item", '{"order_id": "x", "items": [], "extra": 1}'): "extra: Extra inputs",
        ("slow_lookup", '{"key": "a"}'): "key: String should have at least 2 characters",
        ("broken", "{}"): "failed for an internal reason; tell the customer and offer a ticket",
        ("refuses", "{}"): "Error: that order belongs to someone else",
    }
    for (name, arguments), expected in cases.items():
        result = await _call(sqlite_store, name, arguments)
        assert result.startswith("Error:"), (name, arguments, result)
        assert expected in result, (name, arguments, result)


async def test_an_internal_failure_is_logged_and_never_shown(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="helpline.tools"):
        result = await _call(sqlite_store, "broken", "{}")
    assert result == error_result(INTERNAL_FAILURE)
    assert "database exploded" not in result and "RuntimeError" not in result
    [record] = caplog.records
    assert record.exc_info is not None and "database exploded" in str(record.exc_info[1])


async def test_a_database_error_from_a_huge_call_id_never_reaches_the_model(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A 200 KB call id is stored as a digest; a database error would be logged, not shown."""
    conversation_id = store.conversations.create()
    huge = "call_" + "x" * 200_000
    context = ToolContext(conversation_id=conversation_id, tool_call_id=huge, store=store)
    toolset = Toolset([create_customer_ticket])
    arguments = '{"name": "Omar", "issue": "charged twice"}'
    with caplog.at_level(logging.ERROR):
        first = await toolset.call(
            ToolCall.make(huge, "create_customer_ticket", arguments), context
        )
        again = await toolset.call(
            ToolCall.make(huge, "create_customer_ticket", arguments), context
        )
    assert first.startswith("Ticket #1 created for Omar") and again == first
    assert "INSERT" not in first and caplog.records == []
    assert len(store.tickets.find()) == 1
    assert storable_call_id(huge).startswith("sha256:") and len(storable_call_id(huge)) <= 128
    assert storable_call_id("call_0") == "call_0"
