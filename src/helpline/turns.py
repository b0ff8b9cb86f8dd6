"""The turn API every channel uses: the web page and the widget (over HTTP), the terminal,
and any later channel (email, chat apps) start a turn here and read its events. A channel
with threads of its own maps each to a conversation with :func:`open_thread`, so a new
channel is one module that reads its messages in and writes the events out.

A message that could not even be stored (another one is being answered, the database
failed, the conversation was deleted) is a :class:`TurnRefused` exception the channel
answers in its own way (an HTTP status, a line in the terminal), never an event it must
peek at; once :func:`start_turn` returns, the message is stored and the events follow.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from sqlalchemy.exc import IntegrityError

from helpline.assistant import Assistant
from helpline.customers import VerifiedCustomer
from helpline.events import TurnError, TurnEvent
from helpline.messages import UserMessage

_log = logging.getLogger(__name__)

NOT_STARTED = "Something went wrong before your message could be answered. Send it again."


class TurnRefused(Exception):
    """The customer's message was not stored: ``reason`` is ``busy``, ``unavailable`` or
    ``gone``; ``message`` tells them what to do (send it again, or in a new conversation)."""

    def __init__(self, event: TurnError) -> None:
        super().__init__(event.message)
        self.event = event
        self.reason = event.refused or "unavailable"
        self.message = event.message


class Turn:
    """A started turn: the customer's message is stored; its events, as they happen."""

    def __init__(self, first: list[TurnEvent], rest: AsyncIterator[list[TurnEvent]]) -> None:
        self._first: list[TurnEvent] | None = first
        self._rest = rest

    async def batches(self) -> AsyncIterator[list[TurnEvent]]:
        """The events in batches: whatever was ready at once (a server writes each in one go)."""
        if self._first:
            yield self._first
        self._first = None
        async for events in self._rest:
            yield events

    async def __aiter__(self) -> AsyncIterator[TurnEvent]:
        async for events in self.batches():
            for event in events:
                yield event


async def start_turn(assistant: Assistant, conversation_id: str, message: UserMessage) -> Turn:
    """Store the customer's message and start answering it; :class:`TurnRefused` if it could
    not be stored. The turn runs on even if nobody reads its events."""
    batches = assistant.run_turn(conversation_id, message).batches()
    try:
        first: list[TurnEvent] = await anext(batches, [])
    except Exception as exc:  # a bug before anything was answered: the customer resends
        _log.exception("Conversation %s: the turn failed before it started", conversation_id)
        raise TurnRefused(TurnError(NOT_STARTED, refused="unavailable")) from exc
    if first and isinstance(first[0], TurnError) and first[0].refused is not None:
        raise TurnRefused(first[0])
    return Turn(first, batches)


async def open_thread(
    assistant: Assistant,
    channel: str,
    external_thread_id: str,
    customer: VerifiedCustomer | None = None,
) -> str:
    """The conversation of a channel's thread (an email thread, a chat app's thread), started
    by its first message; two first messages at once still share one conversation."""
    conversations = assistant.store.conversations

    def find_or_start() -> str:
        found = conversations.for_thread(channel, external_thread_id)
        if found is not None:
            return found
        try:
            return assistant.new_conversation(
                customer=customer, channel=channel, external_thread_id=external_thread_id
            )
        except IntegrityError:  # the thread's other first message started it just now
            started = conversations.for_thread(channel, external_thread_id)
            if started is None:
                raise
            return started

    return await assistant.store.call(find_or_start)
