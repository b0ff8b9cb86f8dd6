"""The OpenAI-compatible chat-completions backend (xAI, OpenAI, vLLM, Ollama, llama.cpp).

Streams with aiohttp and ``orjson`` rather than the ``openai`` SDK (which builds a
Pydantic object per chunk) or httpx (whose pure-Python HTTP/1.1 stack costs ~250 µs per
paced chunk, against ~40 µs for aiohttp's C parser, measured here).
Streamed tool calls are assembled here, once, for every shape servers send them in.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from helpline.messages import PROVIDER_KEYS, ToolCall
from helpline.models.base import (
    Finish,
    ModelEvent,
    ResponseFormat,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.models.http_stream import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    IncompleteStream,
    Malformed,
    MalformedStream,
    StreamingHTTPModel,
    count,
    event_error,
    expect,
    kind,
    sse_lines,
    stream_error,
)

__all__ = ["DEFAULT_MAX_OUTPUT_TOKENS", "MalformedStream", "OpenAICompatModel", "ToolCallAssembler"]

_CALL_KEYS = frozenset({"index", "id", "type", "function"})
_FUNCTION_KEYS = frozenset({"name", "arguments"})


@dataclass
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    """The provider's own keys on the call (e.g. Gemini's ``extra_content``), sent back."""
    function_extra: dict[str, Any] = field(default_factory=dict)


class ToolCallAssembler:
    """Reassembles streamed tool-call deltas into complete calls.

    Handles a whole call in one chunk (xAI), argument fragments keyed by ``index``
    (OpenAI), continuation fragments without an index, interleaved parallel calls, and
    servers that reuse one ``index`` for every call (a new ``id`` starts a new call, and
    the fragments after it belong to it). Keys it does not know are kept on the call.
    """

    def __init__(self) -> None:
        self._calls: list[_PartialCall] = []
        self._by_index: dict[int, _PartialCall] = {}
        self._last: _PartialCall | None = None

    def add(self, deltas: list[dict[str, Any]]) -> None:
        """Take one chunk's ``tool_calls``; raises ``Malformed`` for a shape no server sends."""
        if type(deltas) is not list:
            raise Malformed(f"delta.tool_calls was {kind(deltas)}, not a list")
        for delta in deltas:
            if type(delta) is not dict:
                raise Malformed(f"a tool call delta was {kind(delta)}, not an object")
            call_id = expect(delta.get("id"), str, "a tool call's id")
            index = expect(delta.get("index"), int, "a tool call's index")
            function = expect(delta.get("function"), dict, "a tool call's function") or {}
            name = expect(function.get("name"), str, "a tool call's function.name")
            arguments = expect(function.get("arguments"), str, "a tool call's arguments")
            partial = self._partial_for(index, call_id)
            if call_id and partial.id is None:
                partial.id = call_id
            if name and not partial.name:
                partial.name = name
            if arguments:
                partial.arguments.append(arguments)
            if not _CALL_KEYS.issuperset(delta):
                partial.extra.update((k, v) for k, v in delta.items() if k not in _CALL_KEYS)
            if not _FUNCTION_KEYS.issuperset(function):
                partial.function_extra.update(
                    (k, v) for k, v in function.items() if k not in _FUNCTION_KEYS
                )
            self._last = partial

    def _partial_for(self, index: int | None, call_id: str | None) -> _PartialCall:
        """The call a delta belongs to, starting a new one where the delta says so."""
        if index is None:
            # No index: a new id starts a new call; anything else continues the last one.
            last = self._last
            if last is not None and (call_id is None or call_id == last.id):
                return last
            return self._start()
        existing = self._by_index.get(index)
        if existing is None or (call_id and existing.id and existing.id != call_id):
            # A new index, or an index reused with a new id: a new call, which the
            # fragments that follow at this index continue.
            existing = self._by_index[index] = self._start()
        return existing

    def _start(self) -> _PartialCall:
        partial = _PartialCall()
        self._calls.append(partial)
        return partial

    def calls(self) -> list[ToolCall]:
        """The complete calls, in the order the model made them."""
        return [
            ToolCall.make(
                id=partial.id or f"call_{secrets.token_hex(12)}",
                name=partial.name,
                arguments="".join(partial.arguments) or "{}",
                extra=partial.extra,
                function_extra=partial.function_extra,
            )
            for partial in self._calls
        ]


class OpenAICompatModel(StreamingHTTPModel):
    """Streams chat completions from an OpenAI-compatible HTTP endpoint, with retries."""

    def request_body(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        response_format: ResponseFormat | None,
    ) -> dict[str, Any]:
        """The exact JSON body sent to ``/chat/completions``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": _chat_messages(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.max_output_tokens,
        }
        if tools:
            body["tools"] = tools
        if response_format is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": response_format.name,
                    "schema": response_format.schema,
                    "strict": True,
                },
            }
        return body

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        body = self.request_body(messages, tools, response_format)
        async for event in self._retrying(
            lambda: self._post_stream("/chat/completions", body, _parse_stream)
        ):
            yield event


async def _parse_stream(body: aiohttp.StreamReader) -> AsyncIterator[ModelEvent]:
    """Turn server-sent chunks into model events; raise if the stream stops early, carries
    an error, or sends something that is not a chat-completions chunk."""
    calls = ToolCallAssembler()
    finish_reason: str | None = None
    usage: Usage | None = None
    done = False
    event = b""
    async for line in sse_lines(body):
        if line.startswith(b"event:"):
            event = line[6:].strip()
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            break
        if event:
            if event == b"error":
                raise event_error(payload)
            event = b""
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            if not payload:  # an empty data line, sent by some servers to keep the line open
                continue
            raise MalformedStream("a data line that is not JSON", payload) from None
        if type(chunk) is not dict:
            raise MalformedStream(f"a chunk that is {kind(chunk)}, not an object", payload)
        if error := chunk.get("error"):
            raise stream_error(error, chunk)
        try:
            if raw_usage := chunk.get("usage"):
                usage = _read_usage(raw_usage)
            for choice in expect(chunk.get("choices"), list, "choices") or ():
                if type(choice) is not dict:
                    raise Malformed(f"a choice was {kind(choice)}, not an object")
                delta = expect(choice.get("delta"), dict, "a choice's delta") or {}
                # Reasoning (reasoning_content, reasoning) is never the answer: not read.
                content = delta.get("content")
                if type(content) is str:
                    if content:
                        yield TextDelta(content)
                elif content is not None:
                    for text in _text_parts(content):
                        yield TextDelta(text)
                if tool_calls := delta.get("tool_calls"):
                    calls.add(tool_calls)
                if reason := choice.get("finish_reason"):
                    finish_reason = expect(reason, str, "finish_reason")
        except Malformed as exc:
            raise MalformedStream(exc.problem, payload) from None
    if not done and finish_reason is None:
        raise IncompleteStream("the stream ended before the answer was complete")
    for call in calls.calls():
        yield ToolCallReady(call)
    if usage is not None:
        yield usage
    yield Finish(finish_reason or "stop")


def _text_parts(content: object) -> list[str]:
    """The answer's text in a list of content parts; thinking and other parts are not it."""
    if type(content) is not list:
        raise Malformed(f"delta.content was {kind(content)}, not text or a list of parts")
    texts = []
    for part in content:
        if type(part) is not dict:
            raise Malformed(f"a content part was {kind(part)}, not an object")
        if part.get("type") == "text" and (text := expect(part.get("text"), str, "a text part")):
            texts.append(text)
    return texts


def _read_usage(raw: object) -> Usage:
    """The provider's counts, its own total and its reasoning and cached tokens included."""
    if type(raw) is not dict:
        raise Malformed(f"usage was {kind(raw)}, not an object")
    completion = expect(raw.get("completion_tokens_details"), dict, "usage details") or {}
    prompt = expect(raw.get("prompt_tokens_details"), dict, "usage details") or {}
    return Usage(
        prompt_tokens=count(raw, "prompt_tokens"),
        completion_tokens=count(raw, "completion_tokens"),
        total_tokens=count(raw, "total_tokens"),
        reasoning_tokens=count(completion, "reasoning_tokens"),
        cached_prompt_tokens=count(prompt, "cached_tokens"),
    )


def _chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages without what other APIs keep on them (a stored response's id …)."""
    if not any(PROVIDER_KEYS.intersection(m) for m in messages):
        return messages
    return [{k: v for k, v in m.items() if k not in PROVIDER_KEYS} for m in messages]
