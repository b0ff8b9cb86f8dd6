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
from typing import Any, Literal

import httpx
import uvicorn
from starlette.types import ASGIApp


class LiveServer:
    """An ASGI ``app`` served by uvicorn on 127.0.0.1 (a free port) in a daemon thread.

    ``lifespan="off"`` serves apps that only speak HTTP; ``shutdown_timeout`` bounds how long
    ``stop()`` lets open requests finish before closing them.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        name: str = "Helpline test server",
        lifespan: Literal["auto", "on", "off"] = "auto",
        shutdown_timeout: int = 2,
    ) -> None:
        self.app = app
        self.port = 0
        self._name = name
        self._lifespan: Literal["auto", "on", "off"] = lifespan
        self._shutdown_timeout = shutdown_timeout
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
            self.app,
            interface="asgi3",
            lifespan=self._lifespan,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=self._shutdown_timeout,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"The {self._name} did not start; see the log above for why.")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():  # shutting down hangs: stop waiting for connections
            self._server.force_exit = True
            self._thread.join(timeout=5)

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
