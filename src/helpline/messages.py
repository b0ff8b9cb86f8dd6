"""The typed message model and its exact OpenAI chat-completions wire form.

The wire form (plain dicts from ``to_wire``) is what is sent to the model, what is
stored, and what ``helpline transcript`` shows; ``from_wire`` reads it back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The message as the OpenAI chat API expects it."""
        return self.model_dump(mode="json", exclude_none=True)


class TextPart(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["text"] = "text"
    text: str


class ImageURL(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(BaseModel):
    # Providers add their own keys (kept and sent back unchanged, or they reject the call).
    model_config = ConfigDict(frozen=True, extra="allow")
    name: str
    arguments: str
    """JSON text, exactly as the model produced it (it may be malformed)."""


class ToolCall(BaseModel):
    # Providers add their own keys, e.g. Gemini's ``extra_content.google.thought_signature``,
    # and reject the follow-up request unless they come back unchanged: they are kept.
    model_config = ConfigDict(frozen=True, extra="allow")
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    @classmethod
    def make(
        cls,
        id: str,
        name: str,
        arguments: str,
        *,
        extra: dict[str, Any] | None = None,
        function_extra: dict[str, Any] | None = None,
    ) -> ToolCall:
        """A call; ``extra`` and ``function_extra`` are the provider's own keys, kept as sent."""
        function = FunctionCall(name=name, arguments=arguments, **(function_extra or {}))
        return cls(id=id, function=function, **(extra or {}))


class SystemMessage(_Message):
    role: Literal["system"] = "system"
    content: str


class UserMessage(_Message):
    role: Literal["user"] = "user"
    content: str | list[ContentPart]


class AssistantMessage(_Message):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    response_id: str | None = None
    """The response stored at the provider that this reply is (Responses API): the next
    request may continue it with ``previous_response_id`` and send only what came after."""
    previous_response_id: str | None = None
    """The request for this reply continued that stored response: only the messages after
    the one carrying it were sent."""
    reasoning: list[dict[str, Any]] | None = None
    """The model's encrypted reasoning items, sent back with the history when the provider
    stores nothing."""

    def to_wire(self) -> dict[str, Any]:
        wire = super().to_wire()
        wire.setdefault("content", None)  # the API wants the key, even when null
        return wire


class ToolMessage(_Message):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: str


PROVIDER_KEYS = frozenset({"response_id", "previous_response_id", "reasoning"})
"""Keys of a stored assistant message that only the Responses API reads."""

Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]
_message_adapter: TypeAdapter[Message] = TypeAdapter(Message)


def from_wire(data: dict[str, Any]) -> Message:
    """Parse one wire-form message; raises ``pydantic.ValidationError`` if malformed."""
    return _message_adapter.validate_python(data)


def unanswered_tool_calls(messages: list[Message]) -> list[ToolCall]:
    """Tool calls in the history that have no tool message answering them."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    return [
        call
        for m in messages
        if isinstance(m, AssistantMessage)
        for call in m.tool_calls or []
        if call.id not in answered
    ]
