"""The one small protocol every chat-model backend implements.

A backend is given the conversation (wire-form messages), the tool schemas and an
optional JSON schema for structured output, and yields a stream of events.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from helpline.messages import ToolCall


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text, as soon as it arrives."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """One tool call, complete (its arguments fully assembled)."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one model request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class StreamRestart:
    """The stream broke and is being retried: discard everything this request yielded so far."""

    reason: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The model finished this request (``stop``, ``tool_calls``, ``length`` …)."""

    reason: str


ModelEvent = TextDelta | ToolCallReady | Usage | StreamRestart | Finish


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Ask for structured output matching a JSON schema."""

    name: str
    schema: dict[str, Any] = field(default_factory=dict)


def reply_events(text: str, calls: Iterable[ToolCall], usage: Usage) -> Iterator[ModelEvent]:
    """A reply decided in one go, as a model would stream it: the text word by word, then
    the tool calls, the usage and the finish."""
    calls = list(calls)
    for piece in re.findall(r"\S+\s*|\s+", text):
        yield TextDelta(piece)
    for call in calls:
        yield ToolCallReady(call)
    yield usage
    yield Finish("tool_calls" if calls else "stop")


class ModelError(Exception):
    """The model could not answer (after retries); the message is safe to show a customer."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat-model backend."""

    @property
    def name(self) -> str:
        """A human-readable description, e.g. ``grok-4 at https://api.x.ai/v1``."""
        ...

    def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        """Stream one model response for ``messages``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
