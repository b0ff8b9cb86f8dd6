"""The Responses API backend (``POST /v1/responses``, streamed): xAI's recommended API, also
served by OpenAI and others.

Helpline's database stays the source of truth: the stored messages are turned into input
items for every request. When the history ends with a reply whose response the provider
stores, followed only by the customer's words and tool results, the request continues that
response (``previous_response_id``) and sends only those new items, so the history is
cached at the provider. Anything else (a person replied, the history was shortened, storage
is off, the stored response expired) sends the whole input.

The stream is read by its semantic events (no ``[DONE]``): text deltas are the answer,
function calls are assembled from their items and argument deltas, reasoning is never the
answer, and ``response.completed``, ``.incomplete``, ``.failed`` or ``error`` end it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from helpline.messages import PROVIDER_KEYS, ToolCall
from helpline.models.base import (
    Finish,
    ModelEvent,
    ResponseFormat,
    ResponseRef,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.models.http_stream import (
    IncompleteStream,
    Malformed,
    MalformedStream,
    StreamingHTTPModel,
    count,
    error_body,
    error_detail,
    expect,
    kind,
    refusal,
    sse_lines,
    stream_error,
)

_log = logging.getLogger("helpline")
CHAIN_GONE_CODE = "previous_response_not_found"
_DELETES_AT_ONCE = 8
"""Stored responses deleted at the same time (a long conversation has hundreds)."""
_NEW_INPUT_ROLES = frozenset({"user", "tool"})
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


class _ChainGone(Exception):
    """The stored response the request continued is gone (expired or deleted)."""


def chain_point(messages: list[dict[str, Any]]) -> tuple[int, str] | None:
    """``(index, response_id)`` of the reply a request may continue: the last assistant
    message, when it carries a stored response's id and only customer messages and tool
    results follow it; ``None`` when the whole input must be sent."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        role = message.get("role")
        if role == "assistant":
            response_id = message.get("response_id")
            if response_id and index < len(messages) - 1:
                return index, response_id
            return None
        if role not in _NEW_INPUT_ROLES:
            return None
    return None


def input_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Responses input items for wire-form chat messages."""
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message["content"],
                }
            )
        elif role == "assistant":
            items.extend(message.get("reasoning") or ())
            if message.get("content"):
                items.append(
                    {"type": "message", "role": "assistant", "content": message["content"]}
                )
            for call in message.get("tool_calls") or ():
                function = call["function"]
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": function["name"],
                        "arguments": function["arguments"],
                    }
                )
        else:
            items.append({"type": "message", "role": role, "content": _content(message["content"])})
    return items


def _content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A message's content: text as it is, parts as ``input_text`` and ``input_image``."""
    if isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "image_url":
            image = part["image_url"]
            parts.append(
                {
                    "type": "input_image",
                    "image_url": image["url"],
                    "detail": image.get("detail") or "auto",
                }
            )
        else:
            parts.append({"type": "input_text", "text": part["text"]})
    return parts


def flat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat tool schemas (``{type, function: {name, parameters}}``) in the Responses shape
    (``{type: function, name, parameters}``)."""
    return [
        {"type": "function", **tool["function"]} if "function" in tool else tool for tool in tools
    ]


class ResponsesModel(StreamingHTTPModel):
    """Streams from a Responses API endpoint, continuing stored responses where it can.

    ``store=False`` asks the provider to keep nothing: every request sends the whole input,
    with the encrypted reasoning of earlier replies.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        store: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(base_url, model, api_key, **options)
        self.store = store

    @property
    def name(self) -> str:
        return f"{self.model} at {self.base_url} (Responses API)"

    def request_body(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        response_format: ResponseFormat | None,
        *,
        chain: bool = True,
    ) -> dict[str, Any]:
        """The exact JSON body sent to ``/responses``: only the new items after a stored
        response it continues (``chain``, when storage is on), or the whole input."""
        point = chain_point(messages) if chain and self.store else None
        body: dict[str, Any] = {"model": self.model}
        if point is not None:
            body["previous_response_id"] = point[1]
            body["input"] = input_items(messages[point[0] + 1 :])
        else:
            body["input"] = input_items(messages)
        body.update(stream=True, store=self.store, max_output_tokens=self.max_output_tokens)
        if not self.store:
            body["include"] = ["reasoning.encrypted_content"]
        if tools:
            body["tools"] = flat_tools(tools)
        if response_format is not None:
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": response_format.name,
                    "schema": response_format.schema,
                    "strict": True,
                }
            }
        return body

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        body = self.request_body(messages, tools, response_format)
        if "previous_response_id" in body:
            yielded = False
            try:
                async for event in self._retrying(lambda: self._once(body)):
                    yielded = True
                    yield event
                return
            except _ChainGone:
                _log.info(
                    "%s no longer has response %s; sending the whole conversation",
                    self.name,
                    body["previous_response_id"],
                )
            if yielded:
                yield StreamRestart(reason="the stored response is gone")
            body = self.request_body(messages, tools, response_format, chain=False)
        full = body
        async for event in self._retrying(lambda: self._once(full)):
            yield event

    def _once(self, body: dict[str, Any]) -> AsyncIterator[ModelEvent]:
        previous = body.get("previous_response_id")

        def refused(status: int, text: str, headers: Mapping[str, str]) -> Exception:
            if previous and _means_chain_gone(status, text, previous):
                return _ChainGone(previous)
            return refusal(status, text, headers)

        def parse(content: aiohttp.StreamReader) -> AsyncIterator[ModelEvent]:
            return _parse_events(content, previous, self.store)

        return self._post_stream("/responses", body, parse, refused)

    async def forget(self, response_ids: list[str]) -> int:
        """Delete stored responses at the provider (a conversation was deleted); how many
        were deleted or already gone. A failure is logged, never raised."""
        session = self._session_for_this_loop()
        at_once = asyncio.Semaphore(_DELETES_AT_ONCE)

        async def delete(response_id: str) -> bool:
            try:
                async with (
                    at_once,
                    session.delete(f"{self.base_url}/responses/{response_id}") as answer,
                ):
                    if answer.status in (200, 204, 404):
                        return True
                    detail = (await answer.text())[:300]
                    _log.warning(
                        "%s did not delete response %s (HTTP %d: %s)",
                        self.name,
                        response_id,
                        answer.status,
                        detail,
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                _log.warning(
                    "%s did not delete response %s (%s)", self.name, response_id, type(exc).__name__
                )
            return False

        results = await asyncio.gather(*(delete(r) for r in dict.fromkeys(response_ids)))
        return sum(results)


def stored_response_ids(messages: list[dict[str, Any]]) -> list[str]:
    """The ids of the provider-stored responses a conversation's messages refer to."""
    return [m["response_id"] for m in messages if m.get("response_id")]


def _means_chain_gone(status: int, text: str, previous: str) -> bool:
    """A 404, or a 400 about ``previous_response_id``, answering a request that continued the
    stored response ``previous``: OpenAI names the code and the parameter; xAI answers with
    flat ``{code, error}`` strings, its message naming the response."""
    if status == 404:
        return True
    if status != 400:
        return False
    error = error_body(text)
    if error.get("code") == CHAIN_GONE_CODE or error.get("param") == "previous_response_id":
        return True
    message = error_detail(status, text)
    return previous in message or "previous_response" in message


@dataclass
class _Call:
    output_index: int = 0
    call_id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    final: str | None = None
    """The whole arguments, when the server sent them (``.done``, or the finished item)."""

    def tool_call(self) -> ToolCall:
        arguments = self.final if self.final is not None else "".join(self.arguments)
        return ToolCall.make(
            id=self.call_id or f"call_{secrets.token_hex(12)}",
            name=self.name,
            arguments=arguments or "{}",
        )


class _Reader:
    """The state of one streamed response, event by event."""

    def __init__(self, previous: str | None, store: bool) -> None:
        self.previous = previous
        self.store = store
        self.response_id: str | None = None
        self.calls: list[_Call] = []
        self._by_item: dict[str, _Call] = {}
        self._by_index: dict[int, _Call] = {}
        self.texted: set[Any] = set()
        """The message items whose text came in deltas, by item id and by output index (xAI
        names a delta's item only by its index); the rest is read from the finished item."""
        self.reasoning: list[dict[str, Any]] = []
        self.usage: Usage | None = None
        self.finish: str | None = None

    def call(self, raw_id: object, raw_index: object) -> _Call:
        """The function call an event is about, found by its item id or output index."""
        item_id: str | None = expect(raw_id, str, "an item id")
        output_index: int | None = expect(raw_index, int, "an output_index")
        partial = self._by_item.get(item_id) if item_id else None
        if partial is None and output_index is not None:
            partial = self._by_index.get(output_index)
        if partial is None:
            partial = _Call(output_index=len(self.calls) if output_index is None else output_index)
            self.calls.append(partial)
        if item_id:
            self._by_item[item_id] = partial
        if output_index is not None:
            self._by_index[output_index] = partial
        return partial

    def item(self, event: Mapping[str, Any], done: bool) -> list[str]:
        """Take an output item as it starts or ends; the text of a finished message whose
        text came in no delta."""
        item = expect(event.get("item"), dict, "an output item") or {}
        kind_of_item = item.get("type")
        if kind_of_item == "function_call":
            partial = self.call(item.get("id"), event.get("output_index"))
            partial.call_id = expect(item.get("call_id"), str, "a call_id") or partial.call_id
            partial.name = expect(item.get("name"), str, "a function call's name") or partial.name
            arguments = expect(item.get("arguments"), str, "a function call's arguments")
            if done and arguments:
                partial.final = arguments
        elif (
            kind_of_item == "message"
            and done
            and item.get("id") not in self.texted
            and event.get("output_index") not in self.texted
        ):
            parts = expect(item.get("content"), list, "a message's content") or ()
            return [
                p["text"]
                for p in parts
                if type(p) is dict and p.get("type") == "output_text" and type(p.get("text")) is str
            ]
        elif (
            kind_of_item == "reasoning"
            and done
            and not self.store
            and item.get("encrypted_content")
        ):
            # Only the sealed reasoning is kept: its readable summary is never stored, so
            # no page can show it.
            kept: dict[str, Any] = {"type": "reasoning", "id": item.get("id"), "summary": []}
            self.reasoning.append({**kept, "encrypted_content": item["encrypted_content"]})
        return []

    def ended(self, event: Mapping[str, Any], finish: str | None) -> None:
        response = expect(event.get("response"), dict, "the event's response") or {}
        self.response_id = expect(response.get("id"), str, "the response's id") or self.response_id
        if raw := response.get("usage"):
            self.usage = _read_usage(raw)
        if finish is None:
            details = expect(response.get("incomplete_details"), dict, "incomplete_details") or {}
            reason = str(details.get("reason") or "max_output_tokens")
            finish = _INCOMPLETE_REASONS.get(reason, reason)
        self.finish = finish

    def closing_events(self) -> list[ModelEvent]:
        ordered = sorted(self.calls, key=lambda partial: partial.output_index)
        calls = [partial.tool_call() for partial in ordered]
        events: list[ModelEvent] = [ToolCallReady(call) for call in calls]
        if self.usage is not None:
            events.append(self.usage)
        events.append(
            ResponseRef(
                response_id=self.response_id if self.store else None,
                previous_response_id=self.previous,
                reasoning=tuple(self.reasoning),
            )
        )
        finish = self.finish or "stop"
        events.append(Finish("tool_calls" if calls and finish == "stop" else finish))
        return events


_TEXT_DELTAS = frozenset({"response.output_text.delta", "response.refusal.delta"})


async def _parse_events(
    body: aiohttp.StreamReader, previous: str | None, store: bool
) -> AsyncIterator[ModelEvent]:
    """Turn the stream's semantic events into model events; raise if it stops before a
    final event, carries an error, or sends something that is not a Responses event."""
    reader = _Reader(previous, store)
    async for line in sse_lines(body):
        if line.startswith(b"event:"):
            continue  # the data repeats the event's type
        payload = line[5:].strip()
        if not payload:
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise MalformedStream("a data line that is not JSON", payload) from None
        if type(event) is not dict:
            raise MalformedStream(f"an event that is {kind(event)}, not an object", payload)
        try:
            kind_of_event = event.get("type")
            if kind_of_event in _TEXT_DELTAS:
                if delta := expect(event.get("delta"), str, "a text delta"):
                    reader.texted.update((event.get("item_id"), event.get("output_index")))
                    yield TextDelta(delta)
            elif kind_of_event == "response.function_call_arguments.delta":
                if delta := expect(event.get("delta"), str, "an arguments delta"):
                    call = reader.call(event.get("item_id"), event.get("output_index"))
                    call.arguments.append(delta)
            elif kind_of_event == "response.function_call_arguments.done":
                arguments = expect(event.get("arguments"), str, "a call's arguments")
                if arguments is not None:
                    reader.call(event.get("item_id"), event.get("output_index")).final = arguments
            elif kind_of_event == "response.output_item.added":
                reader.item(event, done=False)
            elif kind_of_event == "response.output_item.done":
                for text in reader.item(event, done=True):
                    yield TextDelta(text)
            elif kind_of_event == "response.created":
                response = expect(event.get("response"), dict, "the event's response") or {}
                reader.response_id = expect(response.get("id"), str, "the response's id")
            elif kind_of_event == "response.completed":
                reader.ended(event, "stop")
                break
            elif kind_of_event == "response.incomplete":
                reader.ended(event, None)
                break
            elif kind_of_event == "response.failed":  # xAI puts the error beside the response
                response = expect(event.get("response"), dict, "the event's response") or {}
                raise _in_stream_error(response.get("error") or event.get("error") or {}, previous)
            elif kind_of_event == "error":
                raise _in_stream_error(event.get("error") or event, previous)
            # Reasoning deltas, content parts and progress events are not the answer.
        except Malformed as exc:
            raise MalformedStream(exc.problem, payload) from None
    if reader.finish is None:
        raise IncompleteStream("the stream ended before the answer was complete")
    for closing in reader.closing_events():
        yield closing


def _in_stream_error(error: object, previous: str | None) -> Exception:
    if previous and isinstance(error, dict) and error.get("code") == CHAIN_GONE_CODE:
        return _ChainGone(previous)
    return stream_error(error, error if isinstance(error, dict) else {})


def _read_usage(raw: object) -> Usage:
    """The provider's counts: input (and cached input), output (and reasoning) tokens."""
    if type(raw) is not dict:
        raise Malformed(f"usage was {kind(raw)}, not an object")
    inputs = expect(raw.get("input_tokens_details"), dict, "usage details") or {}
    outputs = expect(raw.get("output_tokens_details"), dict, "usage details") or {}
    return Usage(
        prompt_tokens=count(raw, "input_tokens"),
        completion_tokens=count(raw, "output_tokens"),
        total_tokens=count(raw, "total_tokens"),
        reasoning_tokens=count(outputs, "reasoning_tokens"),
        cached_prompt_tokens=count(inputs, "cached_tokens"),
    )


async def forget_conversation_responses(
    model: object, messages: list[dict[str, Any]], *, timeout: float = 30.0
) -> int:
    """Delete a deleted conversation's responses where ``model`` stores them, within
    ``timeout`` seconds (0 when its backend stores none). Never raises: the conversation is
    deleted here whatever the provider answers; what it did not delete is logged."""
    forget = getattr(model, "forget", None)
    ids = stored_response_ids(messages)
    if forget is None or not ids:
        return 0
    try:
        deleted: int = await asyncio.wait_for(forget(ids), timeout)
    except TimeoutError:
        _log.warning("The provider did not delete %d stored responses in time", len(ids))
        return 0
    return deleted


def last_request(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What the request for the conversation's last reply sent, when the Responses API
    answered it: ``previous_response_id`` (when it continued a stored response) and the
    ``input`` items; ``None`` for a reply from any other backend."""
    last = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "assistant"),
        None,
    )
    if last is None or not PROVIDER_KEYS.intersection(messages[last]):
        return None
    previous = messages[last].get("previous_response_id")
    start = 0
    if previous:
        start = next(
            (i + 1 for i in range(last - 1, -1, -1) if messages[i].get("response_id") == previous),
            0,
        )
    sent: dict[str, Any] = {"previous_response_id": previous} if previous else {}
    sent["input"] = input_items(messages[start:last])
    return sent
