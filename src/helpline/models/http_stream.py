"""What the HTTP streaming backends share: the connection pool, retries with back-off and
``retry-after``, server-sent event lines, and reading the errors providers send.

A backend subclasses ``StreamingHTTPModel`` and streams one request with ``_post_stream``
inside ``_retrying``; 408, 409, 429 and 5xx answers, errors inside a stream that name such
a status, cut streams, dropped connections and timeouts are retried, the rest refused.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from helpline.models.base import ModelError, ModelEvent, StreamRestart

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
DEFAULT_MAX_OUTPUT_TOKENS = 4096
"""Room for a support answer, and for the thinking that reasoning models count in it."""
_MAX_RETRY_AFTER = 60.0
_MAX_LINE_BYTES = 16 * 1024 * 1024
SHOWN_CHUNK_CHARS = 300
_log = logging.getLogger("helpline")
_SSE_FIELDS = (b"data:", b"event:")
_JSON = {"Content-Type": "application/json"}


class IncompleteStream(Exception):
    """The server closed the stream before it finished the answer."""


class RetryableStatus(Exception):
    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.retry_after = retry_after


class MalformedStream(ModelError):
    """The provider sent an event that is not of its API's stream; retrying won't help."""

    def __init__(self, problem: str, payload: bytes) -> None:
        super().__init__(
            f"The assistant's model sent a reply that could not be read ({problem}). "
            "Please try again; if it keeps happening, the operator should check that "
            "HELPLINE_BASE_URL and HELPLINE_MODEL name an OpenAI-compatible chat model "
            "(and HELPLINE_API_STYLE the API it serves)."
        )
        self.problem = problem
        self.payload = payload


class Malformed(Exception):
    """Raised while reading one event; the event's text is attached where it is caught."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_KINDS = {str: "text", int: "a number", float: "a number", bool: "true/false", list: "a list"}


def kind(value: object) -> str:
    """What a JSON value is, in words, for saying what a provider sent instead."""
    if value is None:
        return "null"
    return _KINDS.get(type(value), "an object")


def expect(value: Any, wanted: type, where: str) -> Any:
    """``value`` if it is ``None`` or of type ``wanted``; otherwise the event is malformed."""
    if value is not None and type(value) is not wanted:
        raise Malformed(f"{where} was {kind(value)}, not {_KINDS.get(wanted, 'an object')}")
    return value


def count(counts: Mapping[str, Any], key: str) -> int:
    """One token count of a usage object (0 when absent)."""
    return int(expect(counts.get(key), int, f"usage's {key}") or 0)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
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


def error_body(text: str) -> dict[str, Any]:
    """The ``error`` object of an error answer's JSON body (empty when it has none)."""
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def error_detail(status: int, text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300] or f"HTTP {status}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body)[:300]


STATUS_ADVICE = {
    401: "the API key was refused: check XAI_API_KEY or HELPLINE_API_KEY",
    403: "the API key may not use this model: check the key's permissions or HELPLINE_MODEL",
    404: "the model or endpoint was not found: check HELPLINE_MODEL and HELPLINE_BASE_URL",
}
DEFAULT_ADVICE = "check that HELPLINE_MODEL names a chat model that supports streaming and tools"

_STATUS_WORDS = {
    # OpenAI and Anthropic error types and codes, and Google's canonical status names.
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "invalid_argument": 400,
    "failed_precondition": 400,
    "invalid_prompt": 400,
    "invalid_image": 400,
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


def status_of(error: Mapping[str, Any]) -> int | None:
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


def event_error(payload: bytes) -> Exception:
    """An SSE ``event: error``: its data is the error object, holds it under ``error``, or
    is plain text."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        data = payload.decode(errors="replace")
    if isinstance(data, dict):
        return stream_error(data.get("error") or data, data)
    return stream_error(data, {})


def stream_error(error: object, outer: Mapping[str, Any]) -> Exception:
    """An error the provider sent inside a 200 stream, as its own status says: a retry for
    429 and 5xx (and an error that names no status), a clear refusal for the rest."""
    fields = error if isinstance(error, dict) else {}
    status = status_of(fields) or status_of(outer) or 500
    message = fields.get("message") if fields else error
    detail = str(message or error)[:SHOWN_CHUNK_CHARS]
    if status in RETRYABLE_STATUS or status >= 500:
        return RetryableStatus(status, None, f"{detail} (sent inside the stream)")
    advice = STATUS_ADVICE.get(status, DEFAULT_ADVICE)
    return ModelError(
        f"The model API stopped the answer with an error ({status}: {detail}); {advice}."
    )


def refusal(status: int, text: str, headers: Mapping[str, str]) -> Exception:
    """What a non-200 answer means: a retry (with the server's ``retry-after``) or a refusal."""
    detail = error_detail(status, text)
    if status in RETRYABLE_STATUS:
        return RetryableStatus(status, retry_after_seconds(headers), detail)
    advice = STATUS_ADVICE.get(status, DEFAULT_ADVICE)
    return ModelError(f"The model API refused the request (HTTP {status}: {detail}); {advice}.")


def describe(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientError):
        return f"connection failed: {type(exc).__name__}"
    return str(exc)


async def sse_lines(body: aiohttp.StreamReader) -> AsyncIterator[bytes]:
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


Parser = Callable[[aiohttp.StreamReader], AsyncIterator[ModelEvent]]


class StreamingHTTPModel:
    """A connection pool per event loop, and the retry rules every HTTP backend follows."""

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

    async def _retrying(
        self, once: Callable[[], AsyncIterator[ModelEvent]]
    ) -> AsyncIterator[ModelEvent]:
        """The events of ``once()``, called again after a retryable failure (a
        ``StreamRestart`` first when the failed try had yielded anything)."""
        attempt = 0
        while True:
            yielded = False
            try:
                async for event in once():
                    yielded = True
                    yield event
                return
            except MalformedStream as exc:
                _log.error(
                    "%s sent a malformed stream event (%s): %r",
                    self.name,
                    exc.problem,
                    exc.payload[:SHOWN_CHUNK_CHARS].decode(errors="replace"),
                )
                raise
            except (RetryableStatus, IncompleteStream, aiohttp.ClientError, TimeoutError) as exc:
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"The assistant's model did not answer after {attempt + 1} tries "
                        f"({describe(exc)}). Your message is saved; please try again shortly."
                    ) from exc
                if yielded:
                    yield StreamRestart(reason=describe(exc))
                await asyncio.sleep(self._delay(attempt, exc))
                attempt += 1

    def _delay(self, attempt: int, exc: Exception) -> float:
        if isinstance(exc, RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, _MAX_RETRY_AFTER)
        exponential = min(self.max_backoff, self.backoff * 2**attempt)
        return exponential * (0.5 + random.random() / 2)

    async def _post_stream(
        self,
        path: str,
        body: dict[str, Any],
        parse: Parser,
        refused: Callable[[int, str, Mapping[str, str]], Exception] = refusal,
    ) -> AsyncIterator[ModelEvent]:
        """POST ``body`` as JSON to ``path`` and yield what ``parse`` reads from the stream;
        a non-200 answer raises what ``refused`` makes of it."""
        request = self._session_for_this_loop().post(
            f"{self.base_url}{path}", data=orjson.dumps(body), headers=_JSON
        )
        async with request as response:
            if response.status != 200:
                raise refused(response.status, await response.text(), response.headers)
            async for event in parse(response.content):
                yield event
