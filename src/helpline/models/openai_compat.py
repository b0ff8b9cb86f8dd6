"""The OpenAI-compatible chat-completions backend (xAI, OpenAI, vLLM, Ollama, llama.cpp).

Streams with aiohttp and ``orjson`` rather than the ``openai`` SDK (which builds a
Pydantic object per chunk) or httpx (whose pure-Python HTTP/1.1 stack costs ~250 µs per
paced chunk, against ~40 µs for aiohttp's C parser, measured here).
Streamed tool calls are assembled here, once, for every shape servers send them in.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from helpline.messages import ToolCall
from helpline.models.base import (
    Finish,
    ModelError,
    ModelEvent,
    ResponseFormat,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_MAX_OUTPUT_TOKENS = 4096
"""Room for a support answer, and for the thinking that reasoning models count in it."""
_MAX_RETRY_AFTER = 60.0
_MAX_LINE_BYTES = 16 * 1024 * 1024
_SHOWN_CHUNK_CHARS = 300
_log = logging.getLogger("helpline")
_SSE_FIELDS = (b"data:", b"event:")


class _IncompleteStream(Exception):
    """The server closed the stream before it finished the answer."""


class _RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.retry_after = retry_after


class MalformedStream(ModelError):
    """The provider sent a chunk that is not a chat-completions chunk; retrying won't help."""

    def __init__(self, problem: str, payload: bytes) -> None:
        super().__init__(
            f"The assistant's model sent a reply that could not be read ({problem}). "
            "Please try again; if it keeps happening, the operator should check that "
            "HELPLINE_BASE_URL and HELPLINE_MODEL name an OpenAI-compatible chat model."
        )
        self.problem = problem
        self.payload = payload


class _Malformed(Exception):
    """Raised while reading one chunk; the chunk's text is attached where it is caught."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_KINDS = {str: "text", int: "a number", float: "a number", bool: "true/false", list: "a list"}


def _kind(value: object) -> str:
    """What a JSON value is, in words, for saying what a provider sent instead."""
    if value is None:
        return "null"
    return _KINDS.get(type(value), "an object")


def _expect(value: Any, kind: type, where: str) -> Any:
    """``value`` if it is ``None`` or of ``kind``; otherwise the chunk is malformed."""
    if value is not None and type(value) is not kind:
        raise _Malformed(f"{where} was {_kind(value)}, not {_KINDS.get(kind, 'an object')}")
    return value


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
        """Take one chunk's ``tool_calls``; raises ``_Malformed`` for a shape no server sends."""
        if type(deltas) is not list:
            raise _Malformed(f"delta.tool_calls was {_kind(deltas)}, not a list")
        for delta in deltas:
            if type(delta) is not dict:
                raise _Malformed(f"a tool call delta was {_kind(delta)}, not an object")
            call_id = _expect(delta.get("id"), str, "a tool call's id")
            index = _expect(delta.get("index"), int, "a tool call's index")
            function = _expect(delta.get("function"), dict, "a tool call's function") or {}
            name = _expect(function.get("name"), str, "a tool call's function.name")
            arguments = _expect(function.get("arguments"), str, "a tool call's arguments")
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


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if milliseconds := headers.get("retry-after-ms"):
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_detail(status: int, text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300] or f"HTTP {status}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body)[:300]


_STATUS_ADVICE = {
    401: "the API key was refused: check XAI_API_KEY or HELPLINE_API_KEY",
    403: "the API key may not use this model: check the key's permissions or HELPLINE_MODEL",
    404: "the model or endpoint was not found: check HELPLINE_MODEL and HELPLINE_BASE_URL",
}
_DEFAULT_ADVICE = "check that HELPLINE_MODEL names a chat model that supports streaming and tools"

_STATUS_WORDS = {
    # OpenAI and Anthropic error types and codes, and Google's canonical status names.
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "invalid_argument": 400,
    "failed_precondition": 400,
    "authentication_error": 401,
    "unauthenticated": 401,
    "permission_error": 403,
    "permission_denied": 403,
    "not_found_error": 404,
    "not_found": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "resource_exhausted": 429,
    "server_error": 500,
    "api_error": 500,
    "internal": 500,
    "internal_error": 500,
    "overloaded_error": 503,
    "unavailable": 503,
    "deadline_exceeded": 504,
}


def _status_of(error: Mapping[str, Any]) -> int | None:
    """The HTTP status an error object means, read from its ``code``, ``status`` or ``type``."""
    for key in ("code", "status", "type"):
        value = error.get(key)
        if type(value) is str and value.isdigit():
            value = int(value)
        if type(value) is int and 400 <= value <= 599:
            return value
        if type(value) is str and (status := _STATUS_WORDS.get(value.lower())):
            return status
    return None


def _event_error(payload: bytes) -> Exception:
    """An SSE ``event: error``: its data is the error object, holds it under ``error``, or
    is plain text."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = payload.decode(errors="replace")
    if isinstance(data, dict):
        return _stream_error(data.get("error") or data, data)
    return _stream_error(data, {})


def _stream_error(error: object, outer: Mapping[str, Any]) -> Exception:
    """An error the provider sent inside a 200 stream, as its own status says: a retry for
    429 and 5xx (and an error that names no status), a clear refusal for the rest."""
    fields = error if isinstance(error, dict) else {}
    status = _status_of(fields) or _status_of(outer) or 500
    message = fields.get("message") if fields else error
    detail = str(message or error)[:_SHOWN_CHUNK_CHARS]
    if status in RETRYABLE_STATUS or status >= 500:
        return _RetryableStatus(status, None, f"{detail} (sent inside the stream)")
    advice = _STATUS_ADVICE.get(status, _DEFAULT_ADVICE)
    return ModelError(
        f"The model API stopped the answer with an error ({status}: {detail}); {advice}."
    )


class OpenAICompatModel:
    """Streams chat completions from an OpenAI-compatible HTTP endpoint, with retries."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        read_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_output_tokens = max_output_tokens
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        """A connection pool belongs to one event loop; make one for the running loop."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session_loop = loop
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=0, enable_cleanup_closed=True),
            )
        return self._session

    @property
    def name(self) -> str:
        return f"{self.model} at {self.base_url}"

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def request_body(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        response_format: ResponseFormat | None,
    ) -> dict[str, Any]:
        """The exact JSON body sent to ``/chat/completions``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
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
        attempt = 0
        while True:
            yielded = False
            try:
                async for event in self._stream_once(body):
                    yielded = True
                    yield event
                return
            except MalformedStream as exc:
                _log.error(
                    "%s sent a malformed stream chunk (%s): %r",
                    self.name,
                    exc.problem,
                    exc.payload[:_SHOWN_CHUNK_CHARS].decode(errors="replace"),
                )
                raise
            except (_RetryableStatus, _IncompleteStream, aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"The assistant's model did not answer after {attempt + 1} tries "
                        f"({_describe(exc)}). Your message is saved; please try again shortly."
                    ) from exc
                if yielded:
                    yield StreamRestart(reason=_describe(exc))
                await asyncio.sleep(self._delay(attempt, exc))
                attempt += 1

    def _delay(self, attempt: int, exc: Exception) -> float:
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, _MAX_RETRY_AFTER)
        exponential = min(self.max_backoff, self.backoff * 2**attempt)
        return exponential * (0.5 + random.random() / 2)

    async def _stream_once(self, body: dict[str, Any]) -> AsyncIterator[ModelEvent]:
        url = f"{self.base_url}/chat/completions"
        request = self._session_for_this_loop().post(
            url, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        async with request as response:
            if response.status != 200:
                detail = _error_detail(response.status, await response.text())
                if response.status in RETRYABLE_STATUS:
                    raise _RetryableStatus(
                        response.status, _retry_after_seconds(response.headers), detail
                    )
                advice = _STATUS_ADVICE.get(response.status, _DEFAULT_ADVICE)
                raise ModelError(
                    f"The model API refused the request (HTTP {response.status}: "
                    f"{detail}); {advice}."
                )
            async for event in _parse_stream(response.content):
                yield event


async def _sse_lines(body: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The ``data:`` and ``event:`` lines of a server-sent event stream, as soon as each is
    complete.

    Reads whatever has arrived and splits it here: one wake-up per network read, where
    reading line by line costs one per line (and each event is two lines).
    """
    pending = b""
    async for received in body.iter_any():
        *complete, pending = (pending + received).split(b"\n")
        if len(pending) > _MAX_LINE_BYTES:
            raise ModelError(
                "The model API sent a line longer than 16 MiB, which is not a chat stream. "
                "Check HELPLINE_BASE_URL points at an OpenAI-compatible endpoint."
            )
        for line in complete:
            if line.startswith(_SSE_FIELDS):
                yield line
    if pending.startswith(_SSE_FIELDS):
        yield pending


async def _parse_stream(body: aiohttp.StreamReader) -> AsyncIterator[ModelEvent]:
    """Turn server-sent chunks into model events; raise if the stream stops early, carries
    an error, or sends something that is not a chat-completions chunk."""
    calls = ToolCallAssembler()
    finish_reason: str | None = None
    usage: Usage | None = None
    done = False
    event = b""
    async for line in _sse_lines(body):
        if line.startswith(b"event:"):
            event = line[6:].strip()
            continue
        payload = line[5:].strip()
        if payload == b"[DONE]":
            done = True
            break
        if event:
            if event == b"error":
                raise _event_error(payload)
            event = b""
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            if not payload:  # an empty data line, sent by some servers to keep the line open
                continue
            raise MalformedStream("a data line that is not JSON", payload) from None
        if type(chunk) is not dict:
            raise MalformedStream(f"a chunk that is {_kind(chunk)}, not an object", payload)
        if error := chunk.get("error"):
            raise _stream_error(error, chunk)
        try:
            if raw_usage := chunk.get("usage"):
                usage = _read_usage(raw_usage)
            for choice in _expect(chunk.get("choices"), list, "choices") or ():
                if type(choice) is not dict:
                    raise _Malformed(f"a choice was {_kind(choice)}, not an object")
                delta = _expect(choice.get("delta"), dict, "a choice's delta") or {}
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
                    finish_reason = _expect(reason, str, "finish_reason")
        except _Malformed as exc:
            raise MalformedStream(exc.problem, payload) from None
    if not done and finish_reason is None:
        raise _IncompleteStream("the stream ended before the answer was complete")
    for call in calls.calls():
        yield ToolCallReady(call)
    if usage is not None:
        yield usage
    yield Finish(finish_reason or "stop")


def _text_parts(content: object) -> list[str]:
    """The answer's text in a list of content parts; thinking and other parts are not it."""
    if type(content) is not list:
        raise _Malformed(f"delta.content was {_kind(content)}, not text or a list of parts")
    texts = []
    for part in content:
        if type(part) is not dict:
            raise _Malformed(f"a content part was {_kind(part)}, not an object")
        if part.get("type") == "text" and (text := _expect(part.get("text"), str, "a text part")):
            texts.append(text)
    return texts


def _read_usage(raw: object) -> Usage:
    """The provider's counts, its own total and its reasoning and cached tokens included."""
    if type(raw) is not dict:
        raise _Malformed(f"usage was {_kind(raw)}, not an object")
    completion = _expect(raw.get("completion_tokens_details"), dict, "usage details") or {}
    prompt = _expect(raw.get("prompt_tokens_details"), dict, "usage details") or {}
    return Usage(
        prompt_tokens=_count(raw, "prompt_tokens"),
        completion_tokens=_count(raw, "completion_tokens"),
        total_tokens=_count(raw, "total_tokens"),
        reasoning_tokens=_count(completion, "reasoning_tokens"),
        cached_prompt_tokens=_count(prompt, "cached_tokens"),
    )


def _count(counts: Mapping[str, Any], key: str) -> int:
    return int(_expect(counts.get(key), int, f"usage's {key}") or 0)


def _describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientError):
        return f"connection failed: {type(exc).__name__}"
    return str(exc)
