"""Server-sent events: turn events from the engine as ``event:``/``data:`` frames.

Event names and payloads (the HTTP contract): ``text`` {delta}, ``tool_call``
{id, name, arguments}, ``tool_progress`` {id, text}, ``tool_result`` {id, name, content},
``restart`` {} (the model's stream was retried: drop the text shown since the last tool
round), ``done`` {message_id, usage}, ``error`` {message}.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from helpline.assistant import TurnError, TurnEvent, TurnStream

_log = logging.getLogger("helpline.server")

INTERRUPTED = (
    "Something went wrong while answering. Your message is saved; reload the page to see "
    "what was answered, or send it again."
)


def frame(event: str, data: dict[str, Any]) -> bytes:
    """One SSE frame; JSON never contains a raw newline, so one ``data:`` line suffices."""
    return b"event: %s\ndata: %s\n\n" % (event.encode(), orjson.dumps(data))


def encode(event: TurnEvent) -> bytes:
    return frame(event.name, event.data())


async def stream_turn(turn: TurnStream) -> AsyncIterator[bytes]:
    """The turn as SSE bytes. Closing this stream (a client that left) never stops the turn:
    the engine runs it in its own task and stores every message."""
    try:
        async for events in turn.batches():
            yield b"".join(encode(event) for event in events)
    except Exception:
        _log.exception("A turn failed unexpectedly")
        yield encode(TurnError(INTERRUPTED))
