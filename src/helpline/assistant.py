"""The turn loop: stream from the model, run its tool calls, stream again, until it answers.

Every message is persisted as soon as it is complete: the customer's words before the
model is called, an assistant message with tool calls together with all its tool
results (one transaction), the final answer when it ends. A turn runs in its own task,
so a surface that stops listening (a closed browser tab) never cuts a turn in half.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import anyio.to_thread

from helpline.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
from helpline.models.base import (
    ChatModel,
    ModelError,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.store import Store
from helpline.tools import Tool, ToolContext, Toolset

DEFAULT_MAX_ROUNDS = 8
TURN_LEASE = timedelta(minutes=5)
TURN_WAIT_SECONDS = 120.0


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
        return self.content.startswith("Error:")

    def data(self) -> dict[str, Any]:
        return {"id": self.call.id, "name": self.call.function.name, "content": self.content}


@dataclass(frozen=True, slots=True)
class TurnDone(_Event):
    name: ClassVar[str] = "done"
    message_id: int
    usage: Usage

    def data(self) -> dict[str, Any]:
        usage = {
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.total_tokens,
        }
        return {"message_id": self.message_id, "usage": usage}


@dataclass(frozen=True, slots=True)
class TurnError(_Event):
    """The turn could not finish; the message is safe to show the customer."""

    name: ClassVar[str] = "error"
    message: str

    def data(self) -> dict[str, Any]:
        return {"message": self.message}


TurnEvent = (
    TurnText | TurnRestart | TurnToolCall | TurnToolProgress | TurnToolResult | TurnDone | TurnError
)

ROUND_LIMIT_REPLY = (
    "I'm sorry, I couldn't finish that request: it needed more steps than I'm allowed. "
    "Could you rephrase it, or ask me to file a ticket so a person can help?"
)
BUSY_REPLY = (
    "Another message in this conversation is still being answered. "
    "Please wait for that answer, then send this again."
)


class Assistant:
    """A support assistant: a model, its tools, a system prompt and a store."""

    def __init__(
        self,
        model: ChatModel,
        store: Store,
        tools: Toolset | Iterable[Tool] = (),
        system_prompt: str = "You are a helpful customer-support assistant.",
        *,
        vision_model: ChatModel | None = None,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        local_files_allowed: bool = False,
    ) -> None:
        self.model = model
        self.vision_model = vision_model
        self.store = store
        self.tools = tools if isinstance(tools, Toolset) else Toolset(tools)
        self.system_prompt = system_prompt
        self.max_rounds = max_rounds
        self.local_files_allowed = local_files_allowed
        self._local_locks: dict[str, asyncio.Lock] = {}
        self._running: set[asyncio.Task[None]] = set()

    def new_conversation(self, token_hash: str | None = None) -> str:
        """Start a conversation; its first message is the system prompt, as sent to the model."""
        conversation_id = self.store.conversations.create(token_hash=token_hash)
        self.store.conversations.append(
            conversation_id, [SystemMessage(content=self.system_prompt).to_wire()]
        )
        return conversation_id

    def run_turn(self, conversation_id: str, message: UserMessage) -> AsyncIterator[TurnEvent]:
        """Answer one customer message; yields events as they happen.

        The turn runs in its own task and completes even if the caller stops iterating.
        """
        queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()
        task = asyncio.create_task(self._serialised_turn(conversation_id, message, queue))
        self._running.add(task)  # keep a reference: the turn outlives an abandoned iterator
        task.add_done_callback(self._running.discard)
        return _drain(queue, task)

    async def _serialised_turn(
        self, conversation_id: str, message: UserMessage, queue: asyncio.Queue[TurnEvent | None]
    ) -> None:
        try:
            async with self._turn_lock(conversation_id) as acquired:
                if not acquired:
                    queue.put_nowait(TurnError(BUSY_REPLY))
                    return
                await self._turn(conversation_id, message, queue.put_nowait)
        except ModelError as exc:
            queue.put_nowait(TurnError(str(exc)))
        finally:
            queue.put_nowait(None)

    @asynccontextmanager
    async def _turn_lock(self, conversation_id: str) -> AsyncIterator[bool]:
        """Serialise turns per conversation: a local lock, then a lease in the database."""
        lock = self._local_locks.setdefault(conversation_id, asyncio.Lock())
        async with lock:
            holder = secrets.token_hex(8)
            conversations = self.store.conversations
            deadline = asyncio.get_running_loop().time() + TURN_WAIT_SECONDS
            acquired = False
            while not acquired:
                acquired = await anyio.to_thread.run_sync(
                    conversations.try_lock_turn, conversation_id, holder, TURN_LEASE
                )
                if not acquired:
                    if asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.05)
            try:
                yield acquired
            finally:
                if acquired:
                    await anyio.to_thread.run_sync(
                        conversations.unlock_turn, conversation_id, holder
                    )
        if not lock.locked():
            self._local_locks.pop(conversation_id, None)

    async def _turn(self, conversation_id: str, message: UserMessage, emit: Any) -> None:
        conversations = self.store.conversations
        await anyio.to_thread.run_sync(conversations.append, conversation_id, [message.to_wire()])
        history = await anyio.to_thread.run_sync(conversations.messages, conversation_id)
        schemas = self.tools.schemas() or None
        total = Usage()
        for _ in range(self.max_rounds):
            text: list[str] = []
            calls: list[ToolCall] = []
            usage = Usage()
            async for event in self.model.stream(history, schemas):
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    emit(TurnText(event.text))
                elif isinstance(event, ToolCallReady):
                    calls.append(event.call)
                elif isinstance(event, Usage):
                    usage = usage + event
                elif isinstance(event, StreamRestart):
                    text.clear()
                    calls.clear()
                    emit(TurnRestart())
            total = total + usage
            reply = AssistantMessage(content="".join(text) or None, tool_calls=calls or None)
            if not calls:
                ids = await self._persist(conversation_id, [reply.to_wire()], usage)
                emit(TurnDone(ids[-1], total))
                return
            for call in calls:
                emit(TurnToolCall(call))
            results = await asyncio.gather(
                *(self._run_tool(conversation_id, call, emit) for call in calls)
            )
            round_messages = [reply.to_wire()] + [
                ToolMessage(tool_call_id=call.id, content=result).to_wire()
                for call, result in zip(calls, results, strict=True)
            ]
            await self._persist(conversation_id, round_messages, usage)
            history.extend(round_messages)
        emit(TurnText(ROUND_LIMIT_REPLY))
        ids = await self._persist(
            conversation_id, [AssistantMessage(content=ROUND_LIMIT_REPLY).to_wire()], Usage()
        )
        emit(TurnDone(ids[-1], total))

    async def _run_tool(self, conversation_id: str, call: ToolCall, emit: Any) -> str:
        loop = asyncio.get_running_loop()

        def progress(text: str) -> None:  # tools may call it from a worker thread
            loop.call_soon_threadsafe(emit, TurnToolProgress(call.id, text))

        context = ToolContext(
            conversation_id=conversation_id,
            tool_call_id=call.id,
            store=self.store,
            vision_model=self.vision_model,
            local_files_allowed=self.local_files_allowed,
            progress=progress,
        )
        result = await self.tools.call(call, context)
        emit(TurnToolResult(call, result))
        return result

    async def _persist(
        self, conversation_id: str, wires: list[dict[str, Any]], usage: Usage
    ) -> list[int]:
        return await anyio.to_thread.run_sync(
            lambda: self.store.conversations.append(
                conversation_id, wires, usage.prompt_tokens, usage.completion_tokens
            )
        )


async def _drain(
    queue: asyncio.Queue[TurnEvent | None], task: asyncio.Task[None]
) -> AsyncIterator[TurnEvent]:
    while (event := await queue.get()) is not None:
        yield event
    await task  # surface unexpected errors from the turn itself
