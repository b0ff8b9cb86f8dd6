"""A fake Responses API server for tests (``POST /v1/responses``), speaking the real stream.

Like ``tests.fake_openai`` it is a real HTTP server on 127.0.0.1, and it plays the same
scripted replies (``text_reply``, ``tool_call_reply``, ``cut_reply``, ``error_reply`` …), so
one script drives both API styles. A streamed reply goes out as the semantic events of
xAI's and OpenAI's Responses documentation, each an SSE ``event:`` line naming its type and
a ``data:`` line carrying it, with no ``[DONE]``::

    response.created, response.in_progress
    response.output_item.added            a reasoning item, a message, a function_call
    response.reasoning_summary_part.added / response.reasoning_summary_text.delta / .done
    response.content_part.added / response.output_text.delta / .done / content_part.done
    response.function_call_arguments.delta / .done
    response.output_item.done
    response.completed | response.incomplete | response.failed | error

It keeps responses as the provider does (unless the request says ``store: false``): a
request with ``previous_response_id`` continues a stored one, and one that names a response
that is gone (``expire``, or deleted with ``DELETE /v1/responses/{id}``) is refused as
OpenAI refuses it (400 ``previous_response_not_found``; ``gone_status=404`` for a plain
404). A callable in the script gets the request body with ``messages`` added: the whole
conversation so far (stored history and new input) in chat wire form.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from helpline.server.testing import LiveServer
from tests.fake_openai import (
    _SSE_HEADERS,
    ErrorReply,
    ScriptItem,
    StalledReply,
    StreamedReply,
    _dumps,
    _send_json,
    _split,
    _wait,
    error_reply,
)

_REASONING_KEYS = ("reasoning_content", "reasoning")
_FRAGMENT = 8


@dataclass(frozen=True)
class FailedReply:
    """A 200 stream that ``text`` starts, then ``response.failed`` carrying ``error`` (or,
    with ``event=True``, a bare ``error`` event), as a provider ends an answer it cannot
    finish."""

    error: Mapping[str, Any]
    text: str = ""
    event: bool = False
    beside: bool = False
    """Send the error beside the failed response, not inside it, as xAI documents
    ``response.failed``."""


def failed_reply(
    code: str = "server_error",
    message: str = "The model failed.",
    *,
    text: str = "",
    event: bool = False,
    beside: bool = False,
) -> FailedReply:
    return FailedReply({"code": code, "message": message}, text, event, beside)


@dataclass
class ResponsesRequest:
    """One ``/v1/responses`` request: its body, headers (lower-case), size on the wire and
    the whole conversation it continued, in chat wire form."""

    body: dict[str, Any]
    headers: dict[str, str]
    size: int
    messages: list[dict[str, Any]] = field(default_factory=list)


class FakeResponses:
    """The server: ``start()``/``stop()`` or a context manager; ``base_url`` ends in ``/v1``."""

    def __init__(
        self,
        models: Sequence[str] = ("fake-model",),
        *,
        gone_status: int = 400,
        flat_errors: bool = False,
    ) -> None:
        self.models = list(models)
        self.gone_status = gone_status
        self.flat_errors = flat_errors
        """Refuse a gone ``previous_response_id`` in xAI's flat shape: ``{code, error}``
        strings, the code a gRPC status description, no ``param``."""
        self.interleave_calls = False
        """Stream parallel calls' argument deltas alternately, not one call after another."""
        self.text_deltas = True
        """Stream text as deltas; False sends it only in the finished message item."""
        self.item_ids_in_text_deltas = True
        """False names a text delta's item only by ``output_index`` and ``content_index``, as
        xAI documents its ``response.output_text.delta``."""
        self.requests: list[ResponsesRequest] = []
        self.stored: dict[str, list[dict[str, Any]]] = {}
        """Each stored response's whole conversation: its input items and its output."""
        self.deleted: list[str] = []
        self._script: collections.deque[ScriptItem | FailedReply] = collections.deque()
        self._lock = threading.Lock()
        self._live = LiveServer(
            self._app, name="fake Responses server", lifespan="off", shutdown_timeout=1
        )

    @property
    def base_url(self) -> str:
        return f"{self._live.url}/v1"

    def script(self, *replies: ScriptItem | FailedReply) -> None:
        with self._lock:
            self._script.extend(replies)

    def expire(self, response_id: str) -> None:
        """Forget a stored response, as the provider does after 30 days."""
        with self._lock:
            self.stored.pop(response_id, None)

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()

    def __enter__(self) -> FakeResponses:
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
        method, path = scope["method"], scope["path"]
        if (method, path) == ("GET", "/v1/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            await _send_json(send, 200, {"object": "list", "data": data})
        elif (method, path) == ("POST", "/v1/responses"):
            await self._respond(raw, scope, receive, send)
        elif method == "DELETE" and path.startswith("/v1/responses/"):
            response_id = path.rsplit("/", 1)[1]
            with self._lock:
                found = self.stored.pop(response_id, None) is not None
                if found:
                    self.deleted.append(response_id)
            if found:
                await _send_json(
                    send, 200, {"id": response_id, "object": "response", "deleted": True}
                )
            else:
                text = f"Response with id '{response_id}' not found."
                await _send_json(send, 404, error_reply(404, text, code="not_found").body)
        else:
            text = f"No route {method} {path} on the fake Responses server; use /v1/responses."
            await _send_json(send, 404, error_reply(404, text).body)

    async def _respond(self, raw: bytes, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("input"), list | str):
            text = "The request body must be a JSON object with an input list."
            await _send_json(send, 400, error_reply(400, text).body)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        previous = body.get("previous_response_id")
        new_items = (
            body["input"]
            if isinstance(body["input"], list)
            else [{"role": "user", "content": body["input"]}]
        )
        with self._lock:
            before = self.stored.get(previous) if previous else []
            request = ResponsesRequest(body, headers, len(raw))
            self.requests.append(request)
            number = len(self.requests)
        if before is None:
            text = f"Previous response with id '{previous}' not found."
            error = error_reply(self.gone_status, text, code="previous_response_not_found")
            error.body["error"]["param"] = "previous_response_id"
            flat = {"code": "Client specified an invalid argument", "error": text}
            await _send_json(send, error.status, flat if self.flat_errors else error.body)
            return
        history = [*before, *new_items]
        if problem := _invalid(history, body):
            await _send_json(send, 400, error_reply(400, problem).body)
            return
        request.messages = chat_messages(history)
        with self._lock:  # a refused request takes no reply from the script
            item = self._script.popleft() if self._script else None
        reply = _resolve(item, {**body, "messages": request.messages}, number)
        if isinstance(reply, ErrorReply):
            await _send_json(send, reply.status, reply.body, reply.headers)
            return
        disconnected = asyncio.ensure_future(receive())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            if isinstance(reply, StalledReply):
                await _wait(disconnected, reply.seconds)
                return
            stream = _Stream(self, body, history, before)
            await stream.play(reply, send, disconnected)
        finally:
            disconnected.cancel()

    def _keep(self, response_id: str, conversation: list[dict[str, Any]]) -> None:
        with self._lock:
            self.stored[response_id] = conversation


def _invalid(history: list[dict[str, Any]], body: dict[str, Any]) -> str | None:
    """Why the provider would refuse this conversation, if it would."""
    called = {item.get("call_id") for item in history if item.get("type") == "function_call"}
    for item in history:
        if item.get("type") == "function_call_output" and item.get("call_id") not in called:
            return (
                f"No tool call found for function call output with call_id {item.get('call_id')}."
            )
        if (
            item.get("type") == "reasoning"
            and body.get("store") is False
            and not item.get("encrypted_content")
        ):
            return "A reasoning item sent with store: false must carry its encrypted_content."
    return None


def _resolve(item: ScriptItem | FailedReply | None, body: dict[str, Any], number: int) -> Any:
    if item is None:
        message = (
            f"The fake Responses server's script ran out: request #{number} has no reply. "
            "Queue one more with fake_responses.script(...)."
        )
        return error_reply(500, message, type="fake_script_exhausted")
    if isinstance(item, StreamedReply | ErrorReply | StalledReply | FailedReply):
        return item
    try:
        return item(body)
    except Exception as exc:
        return error_reply(
            500, f"The scripted reply callable for request #{number} raised {exc!r}."
        )


def chat_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation's Responses items in chat wire form (reasoning left out)."""
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "function_call":
            last = messages[-1] if messages else None
            if last is None or last["role"] != "assistant" or last.get("name"):
                last = {"role": "assistant", "content": None}
                messages.append(last)
            function = {"name": item["name"], "arguments": item["arguments"]}
            last.setdefault("tool_calls", []).append(
                {"id": item["call_id"], "type": "function", "function": function}
            )
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
        elif kind == "message":
            messages.append(
                {"role": item["role"], "content": _chat_content(item["role"], item["content"])}
            )
    return messages


def _chat_content(role: str, content: str | list[dict[str, Any]]) -> Any:
    if isinstance(content, str):
        return content
    if role == "assistant":
        return "".join(part.get("text", "") for part in content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "input_image":
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": part["image_url"], "detail": part.get("detail")},
                }
            )
        else:
            parts.append({"type": "text", "text": part["text"]})
    return parts


class _Stream:
    """One streamed response: its events in order, numbered, with the output it builds."""

    def __init__(
        self,
        server: FakeResponses,
        body: dict[str, Any],
        history: list[dict[str, Any]],
        before: list[dict[str, Any]],
    ) -> None:
        self.server = server
        self.body = body
        self.history = history
        self.before = before
        self.id = f"resp_{uuid.uuid4().hex[:24]}"
        self.sequence = 0
        self.output: list[dict[str, Any]] = []

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\n".encode() + b"data: " + _dumps(data) + b"\n\n"

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.body.get("model", "fake-model"),
            "output": list(self.output),
            "previous_response_id": self.body.get("previous_response_id"),
            "store": self.body.get("store", True),
            **fields,
        }

    async def play(
        self, reply: StreamedReply | FailedReply, send: Send, disconnected: asyncio.Future[Any]
    ) -> None:
        deltas_sent = 0
        cut_after = reply.cut_after if isinstance(reply, StreamedReply) else None
        delay = reply.delay if isinstance(reply, StreamedReply) else 0.0

        async def out(data: bytes, delta: bool = False) -> bool:
            """Send one event; False when the stream stops here (cut, or the client left)."""
            nonlocal deltas_sent
            if delta:
                if deltas_sent == cut_after or await _wait(disconnected, delay):
                    return False
                deltas_sent += 1
            await send({"type": "http.response.body", "body": data, "more_body": True})
            return True

        await out(self._event("response.created", response=self._response("in_progress")))
        await out(self._event("response.in_progress", response=self._response("in_progress")))
        if isinstance(reply, FailedReply):
            for data, is_delta in self._message(_split(reply.text)) if reply.text else ():
                await out(data, is_delta)
            if reply.event:
                tail = self._event("error", param=None, **reply.error)
            elif reply.beside:
                failed = self._response("failed", error=None)
                tail = self._event("response.failed", response=failed, error=dict(reply.error))
            else:
                tail = self._event(
                    "response.failed", response=self._response("failed", error=dict(reply.error))
                )
            await send({"type": "http.response.body", "body": tail})
            return
        thoughts = [d[k] for d in reply.deltas for k in _REASONING_KEYS if k in d]
        texts = [t for d in reply.deltas for t in _texts(d.get("content"))]
        calls = reply.message.get("tool_calls") or []
        events: list[tuple[bytes, bool]] = []
        if thoughts:
            events += self._reasoning(thoughts)
        if texts:
            events += self._message(texts)
        events += self._calls(calls)
        for data, is_delta in events:
            if not await out(data, is_delta):
                return
        if cut_after is not None:
            return
        if reply.after_deltas:
            await out(reply.after_deltas)
        if not reply.finishes:
            await send({"type": "http.response.body", "body": b""})
            return
        usage = (
            reply.usage
            if reply.usage is not None
            else self._usage(len(texts) + len(calls), len(thoughts))
        )
        if reply.finish_reason == "length":
            response = self._response(
                "incomplete", incomplete_details={"reason": "max_output_tokens"}, usage=usage
            )
            tail = self._event("response.incomplete", response=response)
        else:
            tail = self._event(
                "response.completed", response=self._response("completed", usage=usage)
            )
        if self.body.get("store", True) is not False:
            self.server._keep(self.id, [*self.history, *self.output])
        await send({"type": "http.response.body", "body": tail})

    def _usage(self, output_tokens: int, reasoning_tokens: int) -> dict[str, Any]:
        """Plausible counts: four characters of input a token, the stored part cached."""
        input_tokens = max(1, len(_dumps(self.history)) // 4)
        cached = len(_dumps(self.before)) // 4 if self.before else 0
        output = output_tokens + reasoning_tokens
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output,
        }

    def _reasoning(self, thoughts: list[str]) -> Iterator[tuple[bytes, bool]]:
        index = len(self.output)
        item: dict[str, Any] = {
            "id": f"rs_{uuid.uuid4().hex[:24]}",
            "type": "reasoning",
            "summary": [],
        }
        ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
        yield self._event("response.output_item.added", output_index=index, item=item), False
        part = {"type": "summary_text", "text": ""}
        yield self._event("response.reasoning_summary_part.added", part=part, **ids), False
        for thought in thoughts:
            yield self._event("response.reasoning_summary_text.delta", delta=thought, **ids), True
        text = "".join(thoughts)
        yield self._event("response.reasoning_summary_text.done", text=text, **ids), False
        yield (
            self._event("response.reasoning_summary_part.done", part={**part, "text": text}, **ids),
            False,
        )
        done = {**item, "summary": [{"type": "summary_text", "text": text}]}
        if "reasoning.encrypted_content" in (self.body.get("include") or ()):
            done["encrypted_content"] = f"enc:{uuid.uuid4().hex}"
        self.output.append(done)
        yield self._event("response.output_item.done", output_index=index, item=done), False

    def _message(self, texts: list[str]) -> Iterator[tuple[bytes, bool]]:
        index = len(self.output)
        item: dict[str, Any] = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        yield self._event("response.output_item.added", output_index=index, item=item), False
        part = {"type": "output_text", "text": "", "annotations": []}
        yield self._event("response.content_part.added", part=part, **ids), False
        by_index = {"output_index": index, "content_index": 0}
        delta_ids = ids if self.server.item_ids_in_text_deltas else by_index
        for text in texts if self.server.text_deltas else ():
            yield (
                self._event("response.output_text.delta", delta=text, logprobs=[], **delta_ids),
                True,
            )
        whole = "".join(texts)
        yield self._event("response.output_text.done", text=whole, logprobs=[], **ids), False
        yield self._event("response.content_part.done", part={**part, "text": whole}, **ids), False
        done = {**item, "status": "completed", "content": [{**part, "text": whole}]}
        self.output.append(done)
        yield self._event("response.output_item.done", output_index=index, item=done), False

    def _calls(self, calls: list[dict[str, Any]]) -> list[tuple[bytes, bool]]:
        per_call = [list(self._call(call)) for call in calls]
        if not self.server.interleave_calls:
            return [event for events in per_call for event in events]
        longest = max(map(len, per_call), default=0)
        return [
            events[rank] for rank in range(longest) for events in per_call if rank < len(events)
        ]

    def _call(self, call: dict[str, Any]) -> Iterator[tuple[bytes, bool]]:
        index = len(self.output)
        function = call["function"]
        item = {
            "id": f"fc_{uuid.uuid4().hex[:24]}",
            "type": "function_call",
            "status": "in_progress",
            "call_id": call["id"],
            "name": function["name"],
            "arguments": "",
        }
        done = {**item, "status": "completed", "arguments": function["arguments"]}
        self.output.append(done)
        ids = {"item_id": item["id"], "output_index": index}
        yield self._event("response.output_item.added", output_index=index, item=item), False
        arguments = function["arguments"]
        for start in range(0, len(arguments), _FRAGMENT):
            piece = arguments[start : start + _FRAGMENT]
            yield self._event("response.function_call_arguments.delta", delta=piece, **ids), True
        yield (
            self._event("response.function_call_arguments.done", arguments=arguments, **ids),
            False,
        )
        yield self._event("response.output_item.done", output_index=index, item=done), False


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return [p["text"] for p in content if p.get("type") == "text" and p.get("text")]
    return []
