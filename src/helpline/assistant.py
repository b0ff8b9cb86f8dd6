"""The turn loop: stream from the model, run its tool calls, stream again, until it answers.

Every message is persisted as soon as it is complete: the customer's words before the
model is called, an assistant message with tool calls together with all its tool
results (one transaction), the final answer when it ends. A turn runs in its own task,
so a surface that stops listening (a closed browser tab) never cuts a turn in half.

A turn holds its conversation by a short lease in the database, renewed while it runs, so
a worker that dies mid-turn frees the conversation within seconds. A turn that fails
stores the apology the customer saw as its answer. What one model reply may cost is
capped: its text, the tool calls it makes at once, and each tool result stored.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from helpline.context_budget import ContextBudget
from helpline.events import (
    TurnDone,
    TurnError,
    TurnEvent,
    TurnRestart,
    TurnText,
    TurnToolCall,
    TurnToolProgress,
    TurnToolResult,
)
from helpline.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
from helpline.metrics import TurnMeter
from helpline.models.base import (
    ChatModel,
    ModelError,
    ModelEvent,
    ResponseRef,
    StreamRestart,
    TextDelta,
    ToolCallReady,
    Usage,
)
from helpline.pricing import ModelCatalog
from helpline.store import WAITING_FOR_AGENT, ConversationGone, Store, TurnStart, VerifiedCustomer
from helpline.store.conversation_events import CUSTOMER_MESSAGE
from helpline.tools import Tool, ToolContext, Toolset, error_result
from helpline.turn_costs import ContextKeeper, TurnLedger
from helpline.understanding.first_intent import FirstIntents

_log = logging.getLogger("helpline")

DEFAULT_MAX_ROUNDS = 8
DEFAULT_MAX_TOOL_CALLS = 8
"""Tool calls run from one model reply; the rest are answered with an error, not run."""
DEFAULT_MAX_REPLY_CHARS = 32_000
"""Characters of answer text stored (and streamed) from one model reply."""
DEFAULT_MAX_TOOL_RESULT_CHARS = 32_000
"""Characters of one tool result stored (and sent to the model on every later turn)."""
TURN_LEASE_SECONDS = 15.0
"""How long a turn's lease lasts unless renewed: a dead worker's conversation is free again
this long after its last renewal. A running turn renews it every third of that."""
TURN_WAIT_SECONDS = 120.0


Emit = Callable[[TurnEvent], None]

ROUND_LIMIT_REPLY = (
    "I'm sorry, I couldn't finish that request: it needed more steps than I'm allowed. "
    "Could you rephrase it, or ask me to file a ticket so a person can help?"
)
MODEL_DOWN_REPLY = (
    "Sorry, I can't answer right now: the assistant's model is not responding. "
    "Your message is saved; please try again in a minute."
)
BUSY_REPLY = (
    "Another message in this conversation is still being answered. "
    "Please wait for that answer, then send this again."
)
GONE_REPLY = (
    "This conversation no longer exists: it was deleted. Start a new conversation to write to us."
)
NOT_SAVED_REPLY = (
    "Sorry, I couldn't save your message: our system is having trouble. "
    "Please send it again in a minute."
)
WITH_AGENT_REPLY = (
    "Thanks, your message is with our support team. A person will reply here as soon as they can."
)
FAILED_REPLY = (
    "Sorry, something went wrong on our side while answering. Your message is saved; "
    "please try again in a minute, or ask for a person if it keeps happening."
)
REPLY_CUT_MARKER = "\n\n[The answer was cut here: it was too long.]"
TOOL_RESULT_CUT_MARKER = "\n[The result was cut here: it was too long.]"


def too_many_tool_calls(limit: int) -> str:
    """The result the model reads for each call beyond the cap (the call was not run)."""
    return error_result(
        f"too many tool calls in one reply; this call was not run. Make at most {limit} at once."
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
        max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
        max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
        max_tool_result_chars: int = DEFAULT_MAX_TOOL_RESULT_CHARS,
        turn_lease_seconds: float = TURN_LEASE_SECONDS,
        turn_wait_seconds: float = TURN_WAIT_SECONDS,
        local_files_allowed: bool = False,
        budget: ContextBudget | None = None,
        catalog: ModelCatalog | None = None,
        model_id: str | None = None,
        intents: FirstIntents | None = None,
    ) -> None:
        self.model = model
        self.vision_model = vision_model
        self.store = store
        self.tools = tools if isinstance(tools, Toolset) else Toolset(tools)
        self.system_prompt = system_prompt
        self.max_rounds = max_rounds
        self.max_tool_calls = max_tool_calls
        self.max_reply_chars = max_reply_chars
        self.max_tool_result_chars = max_tool_result_chars
        self.turn_lease = timedelta(seconds=turn_lease_seconds)
        self.turn_wait_seconds = turn_wait_seconds
        """How long a message waits for the answer to another one in its conversation."""
        self.local_files_allowed = local_files_allowed
        self.context = ContextKeeper(budget)
        """Fits each request into ``budget`` (the model's window less its output limit)."""
        self.catalog = catalog or ModelCatalog.load()
        """Prices the model's replies (and knows its context window)."""
        self.model_id = model_id or getattr(model, "model", None) or model.name
        """The model's name in the price table and in the usage records."""
        self.intents = intents
        """Names the intent of each conversation's first customer line (stored with it)."""
        self._local_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._running: set[asyncio.Task[None]] = set()

    def new_conversation(
        self,
        token_hash: str | None = None,
        customer: VerifiedCustomer | None = None,
        channel: str | None = None,
        external_thread_id: str | None = None,
    ) -> str:
        """Start a conversation; its first message is the system prompt, as sent to the model.
        ``customer``: the signed-in customer it belongs to (the prompt says who they are);
        ``channel`` and ``external_thread_id``: where the customer writes from."""
        prompt = self.system_prompt + (f"\n\n{customer.prompt_note()}" if customer else "")
        system = SystemMessage(content=prompt).to_wire()
        return self.store.conversations.create(
            token_hash=token_hash,
            messages=[system],
            customer=customer,
            channel=channel,
            external_thread_id=external_thread_id,
        )

    def run_turn(self, conversation_id: str, message: UserMessage) -> TurnStream:
        """Answer one customer message; yields events as they happen.

        The turn runs in its own task and completes even if the caller stops iterating.
        """
        queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()
        task = asyncio.create_task(self._serialised_turn(conversation_id, message, queue))
        self._running.add(task)  # keep a reference: the turn outlives an abandoned iterator
        task.add_done_callback(self._running.discard)
        return TurnStream(queue, task)

    async def wait_idle(self) -> None:
        """Wait for the turns in progress to finish (before shutting a server down)."""
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _serialised_turn(
        self, conversation_id: str, message: UserMessage, queue: asyncio.Queue[TurnEvent | None]
    ) -> None:
        meter = TurnMeter(self.tools)

        def emit(event: TurnEvent) -> None:
            meter.saw(event)
            queue.put_nowait(event)

        holder = secrets.token_hex(8)
        crashed = False
        try:
            async with self._local_lock(conversation_id):
                start = await self._start(conversation_id, holder, message, emit)
                if start is None:
                    return
                async with self._lease_renewed(conversation_id, holder):
                    try:
                        await self._answer(conversation_id, holder, start, emit)
                    except Exception as exc:
                        crashed = not isinstance(exc, ModelError)
                        await self._fail(conversation_id, holder, exc, emit)
                    except BaseException:  # cancelled: the next message need not wait
                        await self.store.call(
                            self.store.conversations.release_turn, conversation_id, holder
                        )
                        raise
        except BaseException:
            crashed = True
            raise
        finally:
            meter.ended(crashed=crashed)
            queue.put_nowait(None)

    async def _start(
        self, conversation_id: str, holder: str, message: UserMessage, emit: Emit
    ) -> TurnStart | None:
        """Take the lease and store the message; ``None`` (the customer told why and that
        they must send it again) if it could not be stored."""
        try:
            start = await self._begin_turn(conversation_id, holder, message)
        except ConversationGone:
            emit(TurnError(GONE_REPLY, refused="gone"))
            return None
        except Exception as exc:  # nothing is stored: the customer must resend
            _log.exception("Conversation %s: the message could not be stored", conversation_id)
            detail = f"The database failed ({type(exc).__name__}: {exc})."
            emit(TurnError(NOT_SAVED_REPLY, detail=detail, refused="unavailable"))
            return None
        if start is None:
            emit(TurnError(BUSY_REPLY, refused="busy"))
        elif self.intents is not None and _first_from_customer(start.history):
            self._in_background(self._record_intent(conversation_id, message))
        return start

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._running.add(task)  # wait_idle waits for it too
        task.add_done_callback(self._running.discard)

    async def _record_intent(self, conversation_id: str, message: UserMessage) -> None:
        """Classify the first customer line beside the turn; a failure is logged, never raised."""
        assert self.intents is not None
        intent = await asyncio.to_thread(self.intents.of, message)
        if intent is None:
            return
        try:
            await self.store.call(self.store.conversations.set_intent, conversation_id, intent)
        except Exception:
            _log.exception("Conversation %s: its intent could not be stored", conversation_id)

    async def _answer(
        self, conversation_id: str, holder: str, start: TurnStart, emit: Emit
    ) -> None:
        if start.status == WAITING_FOR_AGENT:
            await self._keep_for_agent(conversation_id, holder, emit)
        else:
            await self._turn(conversation_id, holder, start.history, emit)

    async def _fail(self, conversation_id: str, holder: str, exc: Exception, emit: Emit) -> None:
        """End a failed turn with an apology, stored as its answer (what the customer saw)."""
        if isinstance(exc, ModelError):
            _log.warning("Conversation %s: the model failed: %s", conversation_id, exc)
            apology, detail = MODEL_DOWN_REPLY, str(exc)
        else:
            _log.error(
                "Conversation %s: the turn failed unexpectedly; the customer was told to try again",
                conversation_id,
                exc_info=exc,
            )
            apology, detail = FAILED_REPLY, f"The turn failed ({type(exc).__name__}: {exc})."
        try:
            await self._end_turn(
                conversation_id, holder, AssistantMessage(content=apology), Usage()
            )
        except Exception:
            _log.exception(
                "Conversation %s: the apology could not be stored; the conversation is free "
                "again when its lease expires",
                conversation_id,
            )
        emit(TurnError(apology, detail=detail))

    @asynccontextmanager
    async def _lease_renewed(self, conversation_id: str, holder: str) -> AsyncIterator[None]:
        """Keep the turn's short lease while the turn runs (renewed in a task beside it)."""
        renewal = asyncio.create_task(self._renew_lease(conversation_id, holder))
        try:
            yield
        finally:
            renewal.cancel()

    async def _renew_lease(self, conversation_id: str, holder: str) -> None:
        """Every third of the lease, extend it (one UPDATE of the row this turn holds)."""
        every = self.turn_lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            try:
                kept = await self.store.call(
                    self.store.conversations.renew_turn, conversation_id, holder, self.turn_lease
                )
            except Exception:
                _log.exception(
                    "Conversation %s: the turn's lease could not be renewed", conversation_id
                )
                continue
            if not kept:
                _log.warning(
                    "Conversation %s: the turn lost its lease (not renewed within %g s); "
                    "another message may be answered at the same time",
                    conversation_id,
                    self.turn_lease.total_seconds(),
                )
                return

    @asynccontextmanager
    async def _local_lock(self, conversation_id: str) -> AsyncIterator[None]:
        """Queue this process's turns for one conversation without polling the database."""
        lock, users = self._local_locks.get(conversation_id, (asyncio.Lock(), 0))
        self._local_locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._local_locks[conversation_id]
            if users == 1:
                del self._local_locks[conversation_id]
            else:
                self._local_locks[conversation_id] = (lock, users - 1)

    async def _begin_turn(
        self, conversation_id: str, holder: str, message: UserMessage
    ) -> TurnStart | None:
        """Take the conversation's lease in the database (other workers may hold it), store
        the customer's message and read the history; ``None`` if the lease stays taken."""
        deadline = asyncio.get_running_loop().time() + self.turn_wait_seconds
        while True:
            start = await self.store.call(
                self.store.conversations.begin_turn,
                conversation_id,
                holder,
                self.turn_lease,
                message.to_wire(),
            )
            if start is not None or asyncio.get_running_loop().time() > deadline:
                return start
            await asyncio.sleep(0.05)

    async def _turn(
        self, conversation_id: str, holder: str, history: list[dict[str, Any]], emit: Emit
    ) -> None:
        schemas = self.tools.schemas() or None
        total = Usage()
        ledger = TurnLedger(self.model_id, self.catalog)
        try:
            for _ in range(self.max_rounds):
                sent = self.context.fit(conversation_id, history, schemas)
                reply, usage = await self._model_reply(
                    conversation_id, sent.messages, schemas, emit
                )
                ledger.add(usage, sent)
                total = total + usage
                calls = reply.tool_calls or []
                if not calls:
                    ids = await self._end_turn(conversation_id, holder, reply, usage)
                    await self._record_usage(conversation_id, ledger)
                    emit(TurnDone(ids[-1], total, ledger.cost_usd, self.model_id))
                    return
                await self._tool_round(conversation_id, reply, calls, usage, history, emit)
        except Exception:
            await self._record_usage(conversation_id, ledger)  # what a failed turn still cost
            raise
        emit(TurnText(ROUND_LIMIT_REPLY))
        limit_reply = AssistantMessage(content=ROUND_LIMIT_REPLY)
        ids = await self._end_turn(conversation_id, holder, limit_reply, Usage())
        await self._record_usage(conversation_id, ledger)
        emit(TurnDone(ids[-1], total, ledger.cost_usd, self.model_id))

    async def _record_usage(self, conversation_id: str, ledger: TurnLedger) -> None:
        """Store what the turn's replies used and cost; a failure is logged, never the turn's."""
        replies = ledger.take()
        if not replies:
            return
        try:
            await self.store.call(self.store.usage.record, conversation_id, replies)
        except Exception:
            _log.exception("Conversation %s: the model usage could not be stored", conversation_id)

    async def _tool_round(
        self,
        conversation_id: str,
        reply: AssistantMessage,
        calls: list[ToolCall],
        usage: Usage,
        history: list[dict[str, Any]],
        emit: Emit,
    ) -> None:
        """Run a reply's tool calls and store the reply with their results (one transaction)."""
        keys = call_keys(history, calls)
        results = await self._run_tools(conversation_id, calls, keys, emit)
        round_messages = [reply.to_wire()] + [
            ToolMessage(tool_call_id=call.id, content=result).to_wire()
            for call, result in zip(calls, results, strict=True)
        ]
        await self.store.call(
            self.store.conversations.append,
            conversation_id,
            round_messages,
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        history.extend(round_messages)

    async def _model_reply(
        self,
        conversation_id: str,
        history: list[dict[str, Any]],
        schemas: list[dict[str, Any]] | None,
        emit: Emit,
    ) -> tuple[AssistantMessage, Usage]:
        """One model reply, its text streamed as it comes. Text beyond ``max_reply_chars``
        is cut with a marker and the reply ends there (its tool calls, if any, dropped)."""
        text: list[str] = []
        length = 0
        calls: list[ToolCall] = []
        usage = Usage()
        stored: dict[str, Any] = {}  # where the provider keeps this reply, if it does
        stream = self.model.stream(history, schemas)
        async for event in stream:
            if isinstance(event, TextDelta):
                length += len(event.text)
                if length > self.max_reply_chars:
                    kept = event.text[: len(event.text) - (length - self.max_reply_chars)]
                    text.append(kept + REPLY_CUT_MARKER)
                    emit(TurnText(kept + REPLY_CUT_MARKER))
                    await _stop_reading(stream)
                    _log.warning(
                        "Conversation %s: the model's reply was cut at %d characters",
                        conversation_id,
                        self.max_reply_chars,
                    )
                    return AssistantMessage(content="".join(text)), usage
                text.append(event.text)
                emit(TurnText(event.text))
            elif isinstance(event, ToolCallReady):
                calls.append(event.call)
            elif isinstance(event, Usage):
                usage = usage + event
            elif isinstance(event, ResponseRef):
                stored = event.message_fields()
            elif isinstance(event, StreamRestart):
                text.clear()
                length = 0
                calls.clear()
                stored = {}
                emit(TurnRestart())
        content = "".join(text) or None
        return AssistantMessage(content=content, tool_calls=calls or None, **stored), usage

    async def _run_tools(
        self, conversation_id: str, calls: list[ToolCall], keys: list[str], emit: Emit
    ) -> list[str]:
        """Run a reply's tool calls concurrently, up to ``max_tool_calls``; every call beyond
        gets an error result instead, so each call in the transcript has its result."""
        allowed, refused = calls[: self.max_tool_calls], calls[self.max_tool_calls :]
        for call in allowed:
            emit(TurnToolCall(call))
        results = await asyncio.gather(
            *(
                self._run_tool(conversation_id, call, key, emit)
                for call, key in zip(allowed, keys, strict=False)
            )
        )
        if refused:
            _log.warning(
                "Conversation %s: the model made %d tool calls in one reply; the %d beyond %d "
                "were not run",
                conversation_id,
                len(calls),
                len(refused),
                self.max_tool_calls,
            )
        return [*results, *[too_many_tool_calls(self.max_tool_calls)] * len(refused)]

    async def _keep_for_agent(self, conversation_id: str, holder: str, emit: Emit) -> None:
        """A person has the conversation: the model is not asked; the customer is told their
        message waits for the team (and that note is stored, as everything they see is)."""
        note = AssistantMessage(content=WITH_AGENT_REPLY)
        ids = await self._end_turn(conversation_id, holder, note, Usage())
        emit(TurnText(WITH_AGENT_REPLY))
        emit(TurnDone(ids[-1], Usage()))
        try:  # the team's open pages show the customer's words at once
            await self.store.call(
                self.store.events.publish,
                conversation_id,
                CUSTOMER_MESSAGE,
                {"message_id": ids[-1]},
            )
        except Exception:  # their pages still show it when they next look
            _log.exception("Conversation %s: the team could not be told live", conversation_id)

    async def _run_tool(self, conversation_id: str, call: ToolCall, key: str, emit: Emit) -> str:
        loop = asyncio.get_running_loop()

        def progress(text: str) -> None:
            event = TurnToolProgress(call.id, text)
            if _running_loop() is loop:
                emit(event)  # in order with whatever the tool emits next
            else:
                loop.call_soon_threadsafe(emit, event)  # from a worker thread

        context = ToolContext(
            conversation_id=conversation_id,
            tool_call_id=key,
            store=self.store,
            vision_model=self.vision_model,
            local_files_allowed=self.local_files_allowed,
            progress=progress,
        )
        result = await self.tools.call(call, context)
        if len(result) > self.max_tool_result_chars:
            _log.warning(
                "Conversation %s: %s's result was cut at %d characters",
                conversation_id,
                call.function.name,
                self.max_tool_result_chars,
            )
            result = result[: self.max_tool_result_chars] + TOOL_RESULT_CUT_MARKER
        emit(TurnToolResult(call, result))
        return result

    async def _end_turn(
        self, conversation_id: str, holder: str, reply: AssistantMessage, usage: Usage
    ) -> list[int]:
        return await self.store.call(
            self.store.conversations.end_turn,
            conversation_id,
            holder,
            [reply.to_wire()],
            usage.prompt_tokens,
            usage.completion_tokens,
        )


def _first_from_customer(history: list[dict[str, Any]]) -> bool:
    """Whether the customer's newest message is their first in the conversation."""
    return sum(1 for m in history if m.get("role") == "user") == 1


def call_keys(history: list[dict[str, Any]], calls: list[ToolCall]) -> list[str]:
    """Each call's idempotency key within its conversation: its id, made distinct when a
    server numbers calls afresh in every reply (``call_0`` again) so a new request is never
    answered with an earlier one's result. A round retried after a crash, not yet stored,
    gets the same keys again."""
    seen = Counter(
        call["id"]
        for message in history
        if message.get("role") == "assistant"
        for call in message.get("tool_calls") or ()
    )
    keys = []
    for call in calls:
        earlier = seen[call.id]
        keys.append(call.id if earlier == 0 else f"{call.id}#{earlier + 1}")
        seen[call.id] += 1
    return keys


async def _stop_reading(stream: AsyncIterator[ModelEvent]) -> None:
    """Close a model stream the turn stops reading early, so its connection goes now."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class TurnStream:
    """The events of one turn as they happen: iterate over them, or take them in batches."""

    def __init__(self, queue: asyncio.Queue[TurnEvent | None], task: asyncio.Task[None]) -> None:
        self._queue = queue
        self._task = task

    def __aiter__(self) -> TurnStream:
        return self

    async def __anext__(self) -> TurnEvent:
        event = await self._queue.get()
        if event is None:
            await self._task  # surface unexpected errors from the turn itself
            raise StopAsyncIteration
        return event

    async def batches(self) -> AsyncIterator[list[TurnEvent]]:
        """Every event that is ready at once: under load, one write carries many tokens."""
        while True:
            ready = [await self._queue.get()]
            while not self._queue.empty():
                ready.append(self._queue.get_nowait())
            events = [event for event in ready if event is not None]
            if events:
                yield events
            if len(events) < len(ready):
                await self._task
                return
