"""A fake OpenAI-compatible chat server for tests, speaking the real wire protocol.

It is a real HTTP server (uvicorn, one asyncio loop in a background thread) on
127.0.0.1, so clients are exercised end to end: HTTP, SSE framing, status codes,
headers, broken connections. Replies are scripted, one per chat request, in order::

    def test_x(fake_openai):  # the fixture in conftest.py; or `with FakeOpenAI() as server:`
        fake_openai.script(
            text_reply("Hello there!"),
            tool_call_reply([("call_1", "create_customer_ticket", '{"name":"Omar"}')], shape="xai"),
            error_reply(429, headers={"retry-after": "0"}),
            lambda body: text_reply(f"You said {body['messages'][-1]['content']}"),
        )
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key="test")
        ...
        assert fake_openai.requests[0].body["messages"][-1]["content"] == "hi"

A streamed reply answers a ``"stream": true`` request with SSE chunks exactly like
OpenAI's, and a ``"stream": false`` request with one ``chat.completion`` JSON object.
When the script runs out, requests get a 500 saying so, so the test fails loudly.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

import orjson
from starlette.types import Receive, Scope, Send

from helpline.server.testing import LiveServer

ToolCallShape = Literal["xai", "openai", "no_index", "interleaved", "same_index"]
ReasoningField = Literal["reasoning_content", "reasoning"]


@dataclass(frozen=True)
class StreamedReply:
    """A model answer: ``deltas`` streamed as chunks, or ``message`` as one JSON completion.

    ``cut_after`` drops the connection after that many deltas, without finishing the body.
    ``usage`` replaces the plausible counts of the last chunk, verbatim. ``after_deltas``
    are raw SSE bytes sent after the deltas; ``finishes=False`` ends the body there.
    """

    deltas: tuple[dict[str, Any], ...]
    message: dict[str, Any]
    finish_reason: str
    delay: float = 0.0
    cut_after: int | None = None
    usage: Any = None
    after_deltas: bytes = b""
    finishes: bool = True


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with an OpenAI-style ``{"error": {...}}`` body."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StalledReply:
    """Response headers, then silence for ``seconds``, then the connection closes."""

    seconds: float


Reply = StreamedReply | ErrorReply | StalledReply
ScriptItem = Reply | Callable[[dict[str, Any]], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    """One chat-completion request as the server received it (header names lower-case)."""

    body: dict[str, Any]
    headers: dict[str, str]


_TOKEN = re.compile(r"\s*\S+|\s+$")


def _split(content: str | Sequence[str]) -> list[str]:
    """Word-ish tokens (" there!") like a real model streams, or the given chunks verbatim."""
    return _TOKEN.findall(content) if isinstance(content, str) else list(content)


def text_reply(
    content: str | Sequence[str],
    *,
    reasoning: str | None = None,
    reasoning_field: ReasoningField = "reasoning_content",
    finish_reason: str = "stop",
    usage: Any = None,
    delay: float = 0.0,
) -> StreamedReply:
    """A text answer; a string streams one word-ish token per chunk, a list one item per chunk.

    ``reasoning`` streams as ``reasoning_content`` deltas before the text (as xAI does), or
    as ``reasoning`` deltas (as OpenRouter and vLLM do); ``finish_reason="length"`` is an
    answer cut at the output limit; ``usage`` is the last chunk's usage, verbatim;
    ``delay`` seconds pass before each chunk, to pace the stream like a real model.
    """
    chunks = _split(content)
    thoughts = _split(reasoning) if reasoning else []
    message: dict[str, Any] = {"role": "assistant", "content": "".join(chunks)}
    if reasoning:
        message[reasoning_field] = reasoning
    deltas: list[dict[str, Any]] = [{reasoning_field: t} for t in thoughts]
    deltas += [{"content": c} for c in chunks]
    return StreamedReply(tuple(deltas), message, finish_reason, delay, usage=usage)


def content_parts_reply(parts: Sequence[dict[str, Any]], *, delay: float = 0.0) -> StreamedReply:
    """``delta.content`` as a list of content parts, one part per chunk: ``{"type": "text",
    "text": …}`` parts, and the ``{"type": "thinking", "thinking": [...]}`` parts that
    Mistral's reasoning models stream before the answer."""
    message = {"role": "assistant", "content": list(parts)}
    return StreamedReply(tuple({"content": [p]} for p in parts), message, "stop", delay)


def stream_error_reply(
    error: Mapping[str, Any], *, text: str = "", event: bool = False
) -> StreamedReply:
    """A 200 stream that ``text`` starts, then an error instead of the finish.

    The error is a chunk ``{"error": error, "choices": [... "finish_reason": "error"]}``
    (as OpenRouter sends it), or with ``event=True`` an SSE ``event: error`` whose data is
    ``error`` itself (e.g. ``{"status": 503, "message": …}``).
    """
    if event:
        tail = b"event: error\ndata: " + _dumps(error) + b"\n\n"
    else:
        choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
        chunk = {"object": "chat.completion.chunk", "error": error, "choices": [choice]}
        tail = b"data: " + _dumps(chunk) + b"\n\n"
    reply = text_reply(text)
    return dataclasses.replace(
        reply, deltas=reply.deltas if text else (), after_deltas=tail, finishes=False
    )


def raw_chunk_reply(data: bytes, *, text: str = "") -> StreamedReply:
    """A stream that ``text`` starts, then one ``data:`` line carrying ``data`` verbatim
    (``b"[1]"``, ``b"not json"`` …), then the usual finish and ``[DONE]``."""
    reply = text_reply(text)
    return dataclasses.replace(
        reply, deltas=reply.deltas if text else (), after_deltas=b"data: " + data + b"\n\n"
    )


def deltas_reply(
    deltas: Sequence[dict[str, Any]], *, finish_reason: str = "stop", usage: Any = None
) -> StreamedReply:
    """The given ``delta`` objects streamed verbatim, one per chunk (for shapes the other
    helpers do not make, such as a malformed field)."""
    message = {"role": "assistant", "content": None}
    return StreamedReply(tuple(deltas), message, finish_reason, usage=usage)


def json_reply(data: Any, *, delay: float = 0.0) -> StreamedReply:
    """Structured output: ``data`` serialised as the answer's JSON text content."""
    return text_reply(json.dumps(data), delay=delay)


def tool_call_reply(
    calls: Sequence[tuple[str, str, str]],
    *,
    shape: ToolCallShape = "openai",
    text: str | None = None,
    fragment_size: int = 8,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    finish_reason: str = "tool_calls",
    delay: float = 0.0,
) -> StreamedReply:
    """Tool calls ``(id, name, arguments_json)``, streamed the way a given provider does.

    - ``xai``: each call whole in one chunk;
    - ``openai``: a header chunk (index, id, type, name, empty arguments), then argument
      fragments of ``fragment_size`` characters keyed by ``index`` only;
    - ``no_index``: like ``openai``, but the fragments carry no ``index`` key at all;
    - ``interleaved``: like ``openai``, with the calls' chunks alternating between indexes;
    - ``same_index``: like ``openai``, but every call is ``index`` 0: only its new ``id``
      tells a call from the one before.

    ``text`` streams as content before the calls. ``extra`` adds a provider's own keys to
    a call's first chunk, by call id (a ``function`` key adds to the function), e.g.
    Gemini's ``{"extra_content": {"google": {"thought_signature": …}}}``.
    """
    per_call: list[list[dict[str, Any]]] = []
    for number, (call_id, name, arguments) in enumerate(calls):
        index = 0 if shape == "same_index" else number
        own = dict((extra or {}).get(call_id, {}))
        function_extra = own.pop("function", {})
        if shape == "xai":
            function = {"name": name, "arguments": arguments, **function_extra}
            per_call.append(
                [{"index": index, "id": call_id, "type": "function", "function": function, **own}]
            )
            continue
        header = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": "", **function_extra},
            **own,
        }
        pieces = [arguments[i : i + fragment_size] for i in range(0, len(arguments), fragment_size)]
        key = {} if shape == "no_index" else {"index": index}
        per_call.append([header] + [{**key, "function": {"arguments": p}} for p in pieces])
    if shape == "interleaved":
        ordered = [
            c for rank in range(max(map(len, per_call), default=0)) for c in _column(per_call, rank)
        ]
    else:
        ordered = [c for chunks in per_call for c in chunks]
    deltas = [{"content": c} for c in _split(text or "")] + [{"tool_calls": [c]} for c in ordered]
    message = {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in calls
        ],
    }
    return StreamedReply(tuple(deltas), message, finish_reason, delay)


def _column(rows: list[list[dict[str, Any]]], rank: int) -> list[dict[str, Any]]:
    return [row[rank] for row in rows if rank < len(row)]


def cut_reply(content: str | Sequence[str], *, after: int, delay: float = 0.0) -> StreamedReply:
    """Starts streaming ``content`` like :func:`text_reply`, then drops the connection after
    ``after`` chunks: no finish chunk, no ``[DONE]``, an incomplete HTTP body."""
    return dataclasses.replace(text_reply(content, delay=delay), cut_after=after)


def stall_reply(seconds: float) -> StalledReply:
    """Sends response headers, then nothing for ``seconds`` (to test client read timeouts)."""
    return StalledReply(seconds)


def error_reply(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ErrorReply:
    """An HTTP error (500, 503, 429, 408, 400, 401 …), optionally with headers such as ``retry-after``."""
    phrase = next((s.phrase for s in HTTPStatus if s.value == status), "Error")
    error = {
        "message": message or f"Fake provider error: {status} {phrase}.",
        "type": type or ("server_error" if status >= 500 else "invalid_request_error"),
        "param": None,
        "code": code,
    }
    return ErrorReply(status, {"error": error}, dict(headers or {}))


class FakeOpenAI:
    """The server: ``start()``/``stop()`` or use as a context manager; ``base_url`` ends in ``/v1``."""

    def __init__(self, models: Sequence[str] = ("fake-model",)) -> None:
        self.models = list(models)
        self.requests: list[RecordedRequest] = []
        self._script: collections.deque[ScriptItem] = collections.deque()
        self._lock = threading.Lock()
        self._live = LiveServer(
            self._app, name="fake OpenAI server", lifespan="off", shutdown_timeout=1
        )

    @property
    def base_url(self) -> str:
        return f"{self._live.url}/v1"

    def script(self, *replies: ScriptItem) -> None:
        """Queue replies for the next chat requests, in order; a callable gets the request body."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        route = (scope["method"], scope["path"])
        if route == ("GET", "/v1/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            await _send_json(send, 200, {"object": "list", "data": data})
        elif route == ("POST", "/v1/chat/completions"):
            await self._chat(raw, scope, receive, send)
        else:
            text = f"No route {route[0]} {route[1]} on the fake OpenAI server; use /v1/chat/completions or /v1/models."
            await _send_json(send, 404, error_reply(404, text).body)

    async def _chat(self, raw: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = "The request body is not a JSON object; send the chat request as a JSON object."
            await _send_json(send, 400, error_reply(400, text).body)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self.requests.append(RecordedRequest(body, headers))
            item = self._script.popleft() if self._script else None
            number = len(self.requests)
        reply = _resolve(item, body, number)
        if isinstance(reply, ErrorReply):
            await _send_json(send, reply.status, reply.body, reply.headers)
            return
        disconnected = asyncio.ensure_future(receive())
        try:
            if isinstance(reply, StalledReply):
                await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
                await _wait(disconnected, reply.seconds)
            elif body.get("stream"):
                await _stream(reply, body, send, disconnected)
            else:
                await _complete(reply, body, send, disconnected)
        finally:
            disconnected.cancel()


def _resolve(item: ScriptItem | None, body: dict[str, Any], number: int) -> Reply:
    """The scripted reply for request ``number``, or a loud 500 saying why there is none."""
    if item is None:
        message = (
            f"The fake OpenAI server's script ran out: chat request #{number} has no reply. "
            "Queue one more with fake_openai.script(...)."
        )
        return error_reply(500, message, type="fake_script_exhausted")
    if isinstance(item, StreamedReply | ErrorReply | StalledReply):
        return item
    try:
        return item(body)
    except Exception as exc:
        return error_reply(
            500,
            f"The scripted reply callable for chat request #{number} raised {exc!r}; fix the test's callable.",
        )


_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


async def _send_json(
    send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *extra],
        }
    )
    await send({"type": "http.response.body", "body": _dumps(payload)})


def _dumps(payload: Any) -> bytes:
    """Compact JSON, as OpenAI and xAI put it on the wire."""
    return orjson.dumps(payload)


async def _wait(disconnected: asyncio.Future[Any], seconds: float) -> bool:
    """Sleep ``seconds``, waking early from long waits if the client goes away; True when it
    did. Short waits (a token's pace) just sleep: watching the connection costs more."""
    if seconds > 1:
        await asyncio.wait({disconnected}, timeout=seconds)
    elif seconds > 0:
        await asyncio.sleep(seconds)
    return disconnected.done()


def _usage(reply: StreamedReply, body: dict[str, Any]) -> Any:
    """The reply's own usage, or plausible counts: about four characters of prompt per
    token, one token per chunk."""
    if reply.usage is not None:
        return reply.usage
    prompt = max(1, len(json.dumps(body.get("messages", []))) // 4)
    completion = len(reply.deltas)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _stream(
    reply: StreamedReply, body: dict[str, Any], send: Send, disconnected: asyncio.Future[Any]
) -> None:
    """SSE ``chat.completion.chunk`` events, then ``data: [DONE]`` (unless the reply is cut)."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "system_fingerprint": "fp_fake",
    }
    with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if with_usage:  # OpenAI then sends "usage": null on every chunk but the last.
        head["usage"] = None

    def event(delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + _dumps({**head, "choices": [choice]}) + b"\n\n"

    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    deltas = list(reply.deltas) or [{"content": ""}]
    for number, delta in enumerate(deltas):
        if number == reply.cut_after or await _wait(disconnected, reply.delay):
            return
        data = event({"role": "assistant", **delta} if number == 0 else delta, None)
        await send({"type": "http.response.body", "body": data, "more_body": True})
    if reply.cut_after is not None:
        return
    if not reply.finishes:
        await send({"type": "http.response.body", "body": reply.after_deltas})
        return
    tail = reply.after_deltas + event({}, reply.finish_reason)
    if with_usage:
        tail += b"data: " + _dumps({**head, "choices": [], "usage": _usage(reply, body)}) + b"\n\n"
    await send({"type": "http.response.body", "body": tail + b"data: [DONE]\n\n"})


async def _complete(
    reply: StreamedReply, body: dict[str, Any], send: Send, disconnected: asyncio.Future[Any]
) -> None:
    """One ``chat.completion`` object, after as long as streaming it would take; a cut reply
    sends half of it and drops the connection."""
    if await _wait(disconnected, reply.delay * len(reply.deltas)):
        return
    payload = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake-model"),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": reply.message,
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage(reply, body),
    }
    if reply.cut_after is None:
        await _send_json(send, 200, payload)
        return
    data = _dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data[: len(data) // 2], "more_body": True})
