"""What the terminal shows: Markdown redrawn live on a terminal, plain text in a pipe."""

from __future__ import annotations

import io
import json

from rich.console import Console

from helpline.events import (
    TurnDone,
    TurnError,
    TurnRestart,
    TurnText,
    TurnToolCall,
    TurnToolResult,
)
from helpline.messages import ToolCall
from helpline.models.base import Usage
from helpline.support import create_customer_ticket
from helpline.terminal import JsonLinesPrinter, LiveTurnPrinter, TurnPrinter

CALL = ToolCall.make("call_1", "create_customer_ticket", '{"name": "Omar", "issue": "login"}')
EVENTS = [
    TurnText("Let me "),
    TurnText("check."),
    TurnToolCall(CALL),
    TurnToolResult(CALL, "Ticket #3 created for Omar"),
    TurnText("I filed **ticket #3**"),
    TurnText(" for you."),
    TurnDone(7, Usage(10, 5)),
]
ACTIVITIES = {create_customer_ticket.name: create_customer_ticket.activity}


def test_a_terminal_gets_markdown_rendered_live() -> None:
    out = io.StringIO()
    printer = LiveTurnPrinter(
        Console(file=out, force_terminal=True, width=80), activities=ACTIVITIES
    )
    printer.prefix()
    for event in EVENTS:
        printer.show(event)
    shown = out.getvalue()
    assert "\x1b[" in shown  # styled
    assert "ticket #3" in shown and "**" not in shown  # bold, not asterisks
    assert "Creating a ticket" in shown


def test_a_retried_stream_replaces_its_partial_text_on_a_terminal() -> None:
    out = io.StringIO()
    printer = LiveTurnPrinter(Console(file=out, force_terminal=True, width=80))
    for event in (
        TurnText("The refund wi"),
        TurnRestart(),
        TurnText("Refunds take 5 days."),
        TurnDone(1, Usage()),
    ):
        printer.show(event)
    final_screen = out.getvalue().rsplit("\x1b[2K", 1)[-1]
    assert "Refunds take 5 days." in final_screen and "The refund wi" not in final_screen


def test_a_pipe_gets_plain_text() -> None:
    out = io.StringIO()
    printer = TurnPrinter(out, activities=ACTIVITIES)
    printer.prefix()
    for event in EVENTS:
        printer.show(event)
    shown = out.getvalue()
    assert "\x1b[" not in shown
    assert "Assistant: Let me check.\n… Creating a ticket\n" in shown
    assert shown.endswith("I filed **ticket #3** for you.\n")


def test_a_tool_the_printer_has_no_words_for_is_named() -> None:
    out = io.StringIO()
    printer = TurnPrinter(out)
    printer.show(TurnToolCall(ToolCall.make("call_9", "store_hours", "{}")))
    assert "… Running store_hours\n" in out.getvalue()


def test_json_lines_use_the_stream_event_names() -> None:
    out = io.StringIO()
    printer = JsonLinesPrinter(out)
    for event in EVENTS:
        printer.show(event)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "text", "text", "tool_call", "tool_result", "text", "text", "done",
    ]  # fmt: skip
    assert lines[-1] == {
        "event": "done",
        "message_id": 7,
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "total_tokens": 15,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_usd": None,  # the scripted model has no price
        },
    }


def test_json_lines_say_when_a_message_was_not_kept() -> None:
    out = io.StringIO()
    JsonLinesPrinter(out).show(TurnError("Please send it again.", refused="busy"))
    assert json.loads(out.getvalue()) == {
        "event": "error",
        "message": "Please send it again.",
        "refused": "busy",
    }
