"""Server-sent events: turn events from the engine as ``event:``/``data:`` frames.

Event names and payloads (the HTTP contract): ``text`` {delta}, ``tool_call``
{id, name, arguments}, ``tool_progress`` {id, text}, ``tool_result`` {id, name, content},
``restart`` {} (the model's stream was retried: drop the text shown since the last tool
round), ``done`` {message_id, usage}, ``error`` {message}.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from helpline.events import TurnError, TurnEvent
from helpline.turns import Turn

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


class EventStream(Response):
    """A started turn's events as ``text/event-stream``, written from the request's own task.

    The customer's message is stored by then (one that could not be was a ``TurnRefused``,
    which the route answered with an HTTP error). Leaner than Starlette's
    ``StreamingResponse``, which runs the body in a task group beside a task that waits for
    the client to leave. A client that
    leaves never stops the turn (the engine runs it in its own task and stores every
    message); writes to its closed connection are dropped by the server, or raise, which
    ends this response.
    """

    media_type = "text/event-stream"

    def __init__(
        self, turn: Turn, status_code: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.turn = turn
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for events in self._batches():
                await _write(send, events)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client left

    async def _batches(self) -> AsyncIterator[list[TurnEvent]]:
        try:
            async for events in self.turn.batches():
                yield events
        except Exception:
            _log.exception("A turn failed unexpectedly")
            yield [TurnError(INTERRUPTED)]


async def _write(send: Send, events: list[TurnEvent]) -> None:
    """Every event ready at once in one write: under load, one write carries many."""
    body = b"".join(encode(event) for event in events)
    await send({"type": "http.response.body", "body": body, "more_body": True})
