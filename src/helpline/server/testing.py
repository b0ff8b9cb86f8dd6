"""Run the app on a real socket in a background thread, and read SSE answers: for tests and benchmarks.

::

    with LiveServer(create_app(assistant, settings)) as server:
        response = httpx.post(server.url + "/api/conversations")
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


class LiveServer:
    """``app`` served by uvicorn on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, timeout_graceful_shutdown=2
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="helpline-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The Helpline test server did not start; see the log above.")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: dict[str, Any]


def parse_sse(text: str) -> list[SSEEvent]:
    """All events in a complete SSE body."""
    return list(_events(text.replace("\r\n", "\n").split("\n\n")))


def _events(blocks: list[str]) -> Iterator[SSEEvent]:
    for block in blocks:
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            yield SSEEvent(name, json.loads("\n".join(data)))


async def aiter_sse(response: httpx.Response) -> AsyncIterator[SSEEvent]:
    """Events from a streamed response, each as soon as its frame is complete."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk.replace("\r\n", "\n")
        *complete, buffer = buffer.split("\n\n")
        for event in _events(complete):
            yield event
