"""A small reverse proxy in front of several nodes, as a load balancer would stand: requests
go to the nodes in turn (or to the one an ``X-Test-Node`` header names), a node that refuses
connections is skipped, responses stream through (SSE included), and the client's address is
added to ``X-Forwarded-For``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress

import httpx
from starlette.types import Message, Receive, Scope, Send

PIN = "x-test-node"
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"upgrade",
    b"te",
    b"trailer",
    b"host",
    b"content-length",
    PIN.encode(),
}


class ReverseProxy:
    """An ASGI app that forwards every request to one of ``nodes`` (base URLs)."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = list(nodes)
        self.served_by: list[int] = []
        """Which node answered each request, in order."""
        self._turn = 0
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        if self._client is None:  # on the serving loop
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=1))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        forwarded = dict(scope["headers"]).get(b"x-forwarded-for")
        client = scope["client"][0] if scope.get("client") else "unknown"
        chain = f"{forwarded.decode()}, {client}" if forwarded else client
        headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-for"]
        headers.append((b"x-forwarded-for", chain.encode()))
        path = scope["raw_path"].decode() + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        response = await self._forward(scope, headers, body, path)
        if response is None:
            await _reply(send, 502, b"No node answered.")
            return
        kept = [
            (k.encode(), v.encode())
            for k, v in response.headers.multi_items()
            if k.lower().encode() not in _HOP_BY_HOP
        ]
        await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
        left = asyncio.ensure_future(_client_leaves(receive))
        relay = asyncio.ensure_future(self._relay(response, send))
        try:
            await asyncio.wait({left, relay}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            left.cancel()
            relay.cancel()
            with suppress(asyncio.CancelledError):
                await relay
            await response.aclose()
        if relay.done() and not relay.cancelled() and relay.exception() is not None:
            raise relay.exception()  # type: ignore[misc]  # the node died mid-answer: cut

    async def _forward(
        self, scope: Scope, headers: list[tuple[bytes, bytes]], body: bytes, path: str
    ) -> httpx.Response | None:
        assert self._client is not None
        pinned = dict(scope["headers"]).get(PIN.encode())
        if pinned is not None:
            order = [int(pinned)]
        else:
            start, self._turn = self._turn, self._turn + 1
            order = [(start + i) % len(self.nodes) for i in range(len(self.nodes))]
        for index in order:
            request = self._client.build_request(
                scope["method"], self.nodes[index] + path, headers=headers, content=body
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.ConnectError:
                continue  # that node is down: the next one
            self.served_by.append(index)
            return response
        return None

    @staticmethod
    async def _relay(response: httpx.Response, send: Send) -> None:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _client_leaves(receive: Receive) -> None:
    message: Message = await receive()
    while message["type"] != "http.disconnect":
        message = await receive()


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})
