"""Server-sent events: turn events from the engine as ``event:``/``data:`` frames.

Event names and payloads (the HTTP contract): ``text`` {delta}, ``tool_call``
{id, name, arguments}, ``tool_progress`` {id, text}, ``tool_result`` {id, name, content},
``restart`` {} (the model's stream was retried: drop the text shown since the last tool
round), ``done`` {message_id, usage}, ``error`` {message}.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from helpline.assistant import (
    TurnDone,
    TurnError,
    TurnEvent,
    TurnRestart,
    TurnText,
    TurnToolCall,
    TurnToolProgress,
    TurnToolResult,
)

_log = logging.getLogger("helpline.server")

INTERRUPTED = (
    "Something went wrong while answering. Your message is saved; reload the page to see "
    "what was answered, or send it again."
)


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so one ``data:`` line suffices."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def encode(event: TurnEvent) -> bytes:
    if isinstance(event, TurnText):
        return frame("text", {"delta": event.delta})
    if isinstance(event, TurnToolCall):
        function = event.call.function
        return frame(
            "tool_call",
            {"id": event.call.id, "name": function.name, "arguments": function.arguments},
        )
    if isinstance(event, TurnToolProgress):
        return frame("tool_progress", {"id": event.call_id, "text": event.text})
    if isinstance(event, TurnToolResult):
        return frame(
            "tool_result",
            {"id": event.call.id, "name": event.call.function.name, "content": event.content},
        )
    if isinstance(event, TurnDone):
        usage = event.usage
        return frame(
            "done",
            {
                "message_id": event.message_id,
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                },
            },
        )
    if isinstance(event, TurnRestart):
        return frame("restart", {})
    return frame("error", {"message": event.message})


async def stream_turn(events: AsyncIterator[TurnEvent]) -> AsyncIterator[bytes]:
    """The turn as SSE bytes. Closing this stream (a client that left) never stops the turn:
    the engine runs it in its own task and stores every message."""
    try:
        async for event in events:
            yield encode(event)
    except Exception:
        _log.exception("A turn failed unexpectedly")
        yield encode(TurnError(INTERRUPTED))
