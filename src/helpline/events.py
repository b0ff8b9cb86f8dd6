"""What a turn yields as it happens: text, tool activity, restarts, the end or an error.

The names and payloads are the HTTP stream's contract too (``event:`` and ``data:`` of each
server-sent event).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from helpline.messages import ToolCall
from helpline.models.base import Usage
from helpline.tools import is_error_result


class _Event:
    """Turn events share one naming with the HTTP stream: ``name`` and a JSON-able ``data()``."""

    __slots__ = ()
    name: ClassVar[str]

    def data(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class TurnText(_Event):
    """A piece of the answer."""

    name: ClassVar[str] = "text"
    delta: str

    def data(self) -> dict[str, Any]:
        return {"delta": self.delta}


@dataclass(frozen=True, slots=True)
class TurnRestart(_Event):
    """The model's stream broke and is being retried: forget the text shown since the last tool round."""

    name: ClassVar[str] = "restart"

    def data(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True)
class TurnToolCall(_Event):
    name: ClassVar[str] = "tool_call"
    call: ToolCall

    def data(self) -> dict[str, Any]:
        function = self.call.function
        return {"id": self.call.id, "name": function.name, "arguments": function.arguments}


@dataclass(frozen=True, slots=True)
class TurnToolProgress(_Event):
    """A running tool says what it is doing (e.g. "Reading the text…")."""

    name: ClassVar[str] = "tool_progress"
    call_id: str
    text: str

    def data(self) -> dict[str, Any]:
        return {"id": self.call_id, "text": self.text}


@dataclass(frozen=True, slots=True)
class TurnToolResult(_Event):
    name: ClassVar[str] = "tool_result"
    call: ToolCall
    content: str

    @property
    def is_error(self) -> bool:
        return is_error_result(self.content)

    def data(self) -> dict[str, Any]:
        return {"id": self.call.id, "name": self.call.function.name, "content": self.content}


@dataclass(frozen=True, slots=True)
class TurnDone(_Event):
    """The answer is stored. ``usage`` sums the turn's model replies; ``cost_usd`` is what they
    cost in US dollars (``None`` when the model's prices are unknown); ``model`` answered."""

    name: ClassVar[str] = "done"
    message_id: int
    usage: Usage
    cost_usd: float | None = None
    model: str | None = None

    def data(self) -> dict[str, Any]:
        usage = {
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.total_tokens,
            "cached_tokens": self.usage.cached_prompt_tokens,
            "reasoning_tokens": self.usage.reasoning_tokens,
            "cost_usd": self.cost_usd,
        }
        return {"message_id": self.message_id, "usage": usage}


@dataclass(frozen=True, slots=True)
class TurnError(_Event):
    """The turn could not finish. ``message`` is for the customer; ``detail`` says what
    happened for the operator (the terminal shows it, the web stream does not).

    ``refused`` says why the customer's message was not even stored ("busy": another message
    is being answered; "unavailable": the database failed; "gone": the conversation was
    deleted): they must send it again (in a new conversation, when it is gone).
    """

    name: ClassVar[str] = "error"
    message: str
    detail: str | None = None
    refused: Literal["busy", "unavailable", "gone"] | None = None

    def data(self) -> dict[str, Any]:
        return {"message": self.message, **({"refused": self.refused} if self.refused else {})}


TurnEvent = (
    TurnText | TurnRestart | TurnToolCall | TurnToolProgress | TurnToolResult | TurnDone | TurnError
)
