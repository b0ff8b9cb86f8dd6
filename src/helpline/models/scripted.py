"""A scripted model for tests: replies come from a script, no network.

Integrators use it to test their own tools and prompts::

    model = ScriptedModel(
        ScriptedModel.call("create_customer_ticket", name="Omar", issue="cannot log in"),
        ScriptedModel.text("Done! Your ticket is filed."),
    )
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from helpline.messages import ToolCall
from helpline.models.base import (
    ModelError,
    ModelEvent,
    ResponseFormat,
    Usage,
    reply_events,
)


@dataclass(frozen=True)
class Reply:
    """One scripted model response: text, tool calls, or both."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Request:
    """What the engine sent to the model, recorded for assertions."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    response_format: ResponseFormat | None


ReplySource = Reply | Callable[[list[dict[str, Any]]], Reply]


class ScriptedModel:
    """Answers each request with the next scripted reply (or a function of the messages)."""

    def __init__(self, *replies: ReplySource) -> None:
        self.replies: list[ReplySource] = list(replies)
        self.requests: list[Request] = []

    @staticmethod
    def text(text: str) -> Reply:
        return Reply(text=text)

    @staticmethod
    def call(tool_name: str, /, **arguments: Any) -> Reply:
        """A reply that calls one tool with ``arguments``."""
        return ScriptedModel.calls((tool_name, arguments))

    @staticmethod
    def calls(*calls: tuple[str, dict[str, Any]]) -> Reply:
        """A reply with several parallel tool calls."""
        return Reply(
            tool_calls=tuple(
                ToolCall.make(f"call_{secrets.token_hex(6)}", name, json.dumps(args))
                for name, args in calls
            )
        )

    @property
    def name(self) -> str:
        return "scripted test model"

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        self.requests.append(Request(list(messages), tools, response_format))
        if not self.replies:
            raise ModelError("The scripted model has no reply left for this request.")
        source = self.replies.pop(0)
        reply = source(messages) if callable(source) else source
        usage = Usage(prompt_tokens=len(messages), completion_tokens=len(reply.text.split()))
        for event in reply_events(reply.text, reply.tool_calls, usage):
            yield event

    async def aclose(self) -> None:
        return None
