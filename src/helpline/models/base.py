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
    """Token counts for one model request.

    ``total_tokens`` is the provider's own total when it reports one: reasoning models may
    count tokens that are in neither the prompt nor the completion. Left at 0, it is the
    prompt plus the completion.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    """Tokens the model spent thinking (``completion_tokens_details.reasoning_tokens``)."""
    cached_prompt_tokens: int = 0
    """Prompt tokens served from the provider's cache (``prompt_tokens_details.cached_tokens``)."""

    def __post_init__(self) -> None:
        if not self.total_tokens:
            object.__setattr__(self, "total_tokens", self.prompt_tokens + self.completion_tokens)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_prompt_tokens + other.cached_prompt_tokens,
        )


@dataclass(frozen=True, slots=True)
class StreamRestart:
    """The stream broke and is being retried: discard everything this request yielded so far."""

    reason: str


@dataclass(frozen=True, slots=True)
class Finish:
    """The model finished this request (``stop``, ``tool_calls``, ``length`` …)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ResponseRef:
    """Where the provider keeps the reply (Responses API), for the stored assistant message:
    the response's id when it is stored there, the stored response the request continued,
    and encrypted reasoning to send back when nothing is stored."""

    response_id: str | None = None
    previous_response_id: str | None = None
    reasoning: tuple[dict[str, Any], ...] = ()

    def message_fields(self) -> dict[str, Any]:
        """The assistant message's fields that keep this reference."""
        fields: dict[str, Any] = {
            "response_id": self.response_id,
            "previous_response_id": self.previous_response_id,
        }
        if self.reasoning:
            fields["reasoning"] = list(self.reasoning)
        return fields


ModelEvent = TextDelta | ToolCallReady | Usage | StreamRestart | Finish | ResponseRef


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
