"""The embedded offline assistant: a deterministic support policy behind the model protocol.

It reads the conversation exactly as an LLM would (wire-form messages and tool schemas),
works out what the customer needs, fills the arguments a tool needs from what they said,
asks for what is missing, and emits real tool calls; tool results become short replies.
It is stateless (everything comes from the messages) and never invents a fact.
Routing is the ``ROUTES`` table: where a request leads → tiers of tools, each argument
filled from a slot. Every word it says, and where each of the profile's intents leads,
comes from the profile's playbook (``replies.toml``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from helpline.customers import VerifiedCustomer
from helpline.messages import ToolCall
from helpline.models.base import (
    ModelError,
    ModelEvent,
    ResponseFormat,
    Usage,
    reply_events,
)
from helpline.models.offline_intents import (
    Asked,
    Intent,
    Reading,
    asked_for,
    find_name,
    pick_choice,
    read_message,
    search_query,
    topic_words,
)
from helpline.models.offline_profile import GENERIC_PROBLEM, Playbook, RepliesError, playbook_for
from helpline.models.offline_replies import (
    read_json,
    read_receipt,
    receipt_items,
    receipt_summary,
    render_result,
)
from helpline.tools import is_error_result
from helpline.understanding.intents import IntentMatcher, IntentsError, matcher_for

NOTICE = (
    "(You're chatting with Helpline's built-in offline assistant. For full AI answers, set "
    "XAI_API_KEY to use Grok, or HELPLINE_BASE_URL and HELPLINE_API_KEY for another "
    "OpenAI-compatible endpoint.)"
)


class Slot(StrEnum):
    """A value a tool argument is filled from."""

    NAME = "name"
    ISSUE = "issue"
    ORDER_ID = "order_id"
    EMAIL = "email"
    ITEMS = "items"
    IMAGE_URL = "image_url"
    QUERY = "query"


@dataclass(frozen=True)
class Route:
    """Call ``tool`` with each argument filled from its slot (the profile says what first).

    ``prepare`` names a route that can find a missing slot (an order's items come from
    looking the order up), called first when it is on offer.
    """

    tool: str
    arguments: Mapping[str, Slot]
    prepare: Mapping[Slot, Route] = field(default_factory=dict)


_TICKET = Route("create_customer_ticket", {"name": Slot.NAME, "issue": Slot.ISSUE})
_SEARCH = Route("search_help_center", {"query": Slot.QUERY})
_RECEIPT = Route("analyze_receipt_image", {"image_url": Slot.IMAGE_URL})
# Orders are opened only with the email address on them (the tools check it).
_LOOKUP = Route("lookup_order", {"order_id": Slot.ORDER_ID, "email": Slot.EMAIL})
_RECENT = Route("list_recent_orders", {"email": Slot.EMAIL})
_REFUND = Route(
    "request_refund",
    {"order_id": Slot.ORDER_ID, "email": Slot.EMAIL, "items": Slot.ITEMS, "reason": Slot.ISSUE},
    prepare={Slot.ITEMS: _LOOKUP},
)
_ESCALATE = Route("escalate_to_human", {"reason": Slot.ISSUE})

# Intent → tiers. The first tier with any tool on offer is used; in it, the first route whose
# slots are all filled is called, else the customer is asked for the first route's missing slot.
ROUTES: dict[Intent, tuple[tuple[Route, ...], ...]] = {
    Intent.RECEIPT: ((_RECEIPT,), (_TICKET,)),
    Intent.ORDER: ((_LOOKUP, _RECENT), (_TICKET,)),
    Intent.REFUND: ((_REFUND,), (_TICKET,)),
    Intent.HUMAN: ((_ESCALATE,), (_TICKET,)),
    Intent.PROBLEM: ((_TICKET,), (_SEARCH,)),
    Intent.POLICY: ((_SEARCH,), (_TICKET,)),
}
_PRIORITY = (
    Intent.RECEIPT,
    Intent.ORDER,
    Intent.HUMAN,
    Intent.REFUND,
    Intent.PROBLEM,
    Intent.POLICY,
)
_CASE = (Intent.HUMAN, Intent.REFUND, Intent.PROBLEM)
_SMALL_TALK = frozenset({Intent.GREETING, Intent.THANKS, Intent.GOODBYE, Intent.CANCEL})
_RESOLVING = frozenset({"create_customer_ticket", "request_refund", "escalate_to_human"})

# The [questions] text to ask when a slot is missing, by (tool, slot) or by slot.
QUESTIONS: dict[tuple[str, Slot] | Slot, str] = {
    ("create_customer_ticket", Slot.NAME): "ticket_name",
    ("escalate_to_human", Slot.ISSUE): "escalate_issue",
    Slot.NAME: "name",
    Slot.ORDER_ID: "order_id",
    Slot.EMAIL: "email",
    Slot.ISSUE: "issue",
    Slot.ITEMS: "items",
}
# Ask for what happened before asking who is asking.
_ASK_ORDER = (
    Slot.IMAGE_URL,
    Slot.ISSUE,
    Slot.QUERY,
    Slot.ORDER_ID,
    Slot.EMAIL,
    Slot.ITEMS,
    Slot.NAME,
)
# What a request is called in the profile's [no_tool] and [labels] texts.
NO_TOOL: dict[Intent, str] = {
    Intent.RECEIPT: "receipt",
    Intent.ORDER: "order",
    Intent.REFUND: "refund",
    Intent.HUMAN: "human",
    Intent.PROBLEM: "problem",
    Intent.POLICY: "article",
}
# A short answer that asks for nothing ("yes", "ok").
_ACKNOWLEDGED = re.compile(
    r"^\W*(?:yes|yeah|yep|yup|ok|okay|sure|alright|fine|great|cool|no|nope|perfect)"
    r"(?:\W+(?:please|thanks|thank you|ok|okay))?\W*$",
    re.I,
)
_HEARD_WORDS = 6


# Every turn re-reads the whole conversation (the policy is stateless): a line already read
# with the same question before it reads the same, so it is read once.
_read = functools.lru_cache(maxsize=4096)(read_message)


@dataclass
class _Run:
    """One tool call the assistant made, and its result once it came back."""

    position: int
    call: ToolCall
    arguments: dict[str, Any]
    result: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None and not is_error_result(self.result)


@dataclass
class _Turn:
    position: int
    reading: Reading


@dataclass
class _Goal:
    intent: Intent
    turns: list[_Turn]
    image_urls: list[str] = field(default_factory=list)
    offered: bool = False
    """The customer gave their name after an answer: what they asked is the issue."""

    @property
    def latest(self) -> int:
        return self.turns[-1].position


def _image_references(text: str, local_files_allowed: bool) -> list[str]:
    from helpline.images import find_image_references  # imported lazily: optional for tests of text

    return list(find_image_references(text, local_files_allowed=local_files_allowed))


def _message_text(content: Any) -> tuple[str, list[str]]:
    """Text and image URLs of a wire-form message's content."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return "", []
    texts, images = [], []
    for part in content:
        if part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            images.append(str(part.get("image_url", {}).get("url", "")))
    return "\n".join(texts), images


class _Conversation:
    """Everything the policy knows, derived from the wire-form messages."""

    def __init__(
        self,
        messages: list[dict[str, Any]],
        tools: set[str],
        local_files_allowed: bool,
        book: Playbook,
        matcher: IntentMatcher | None = None,
    ) -> None:
        self.book = book
        self.tools = tools
        system = (
            messages[0].get("content") if messages and messages[0].get("role") == "system" else None
        )
        self.signed_in = VerifiedCustomer.from_prompt(system) if isinstance(system, str) else None
        """The customer the business signed in, as the system prompt says."""
        self.turns: list[_Turn] = []
        self.runs: list[_Run] = []
        self.pending: list[_Run] = []
        self.replied = False
        by_id: dict[str, _Run] = {}
        asked: frozenset[Asked] = frozenset()
        asked_text = ""
        last_assistant: list[_Run] = []
        for position, message in enumerate(messages):
            role = message.get("role")
            if role == "user":
                text, images = _message_text(message.get("content"))
                refs = list(dict.fromkeys([*images, *_image_references(text, local_files_allowed)]))
                reading = self._answered_choice(text, asked_text, matcher)
                if reading is None:
                    reading = _read(text, book, tuple(refs), asked, matcher)
                self.turns.append(_Turn(position, reading))
            elif role == "assistant":
                self.replied = True
                if message.get("content"):
                    asked = asked_for(str(message["content"]))
                    asked_text = str(message["content"])
                last_assistant = []
                for raw in message.get("tool_calls") or []:
                    call = ToolCall.model_validate(raw)
                    try:
                        arguments = json.loads(call.function.arguments or "{}")
                    except ValueError:
                        arguments = {}
                    run = _Run(position, call, arguments if isinstance(arguments, dict) else {})
                    self.runs.append(run)
                    last_assistant.append(run)
                    by_id[call.id] = run
            elif role == "tool" and (answered := by_id.get(str(message.get("tool_call_id")))):
                answered.result = str(message.get("content", ""))
        if messages and messages[-1].get("role") == "tool":
            self.pending = [r for r in last_assistant if r.result is not None]

    def _answered_choice(
        self, text: str, asked_text: str, matcher: IntentMatcher | None
    ) -> Reading | None:
        """The earlier line read as the intent the customer picked, when this answers
        "do you mean A, or B?"; None when it does not."""
        before = self.turns[-1].reading if self.turns else None
        if before is None or before.choices is None or matcher is None:
            return None
        topics = [self.book.intents[name].topic or "" for name in before.choices]
        if not all(topic and topic in asked_text for topic in topics):
            return None
        picked = pick_choice(text, before.choices, topics, matcher)
        named = find_name(text, True, self.book.known_words)
        tickets = [c for c in before.choices if self.book.intents[c].leads_to == "problem"]
        if picked is None and named and len(tickets) == 1:
            picked = tickets[0]  # a name is only asked for a ticket
        if picked is None:
            return None
        spec = next(s for s in matcher.specs if s.name == picked)
        reading = read_message(before.text, self.book, before.image_refs, chosen=spec)
        return replace(reading, name=named[0]) if named else reading

    @property
    def latest(self) -> _Turn | None:
        return self.turns[-1] if self.turns else None

    @property
    def name(self) -> str | None:
        said = next((t.reading.name for t in reversed(self.turns) if t.reading.name), None)
        return said or (self.signed_in.name if self.signed_in else None)

    @property
    def email(self) -> str | None:
        if (
            self.signed_in
        ):  # a signed-in customer's orders open with the address they signed in with
            return self.signed_in.email
        return next((t.reading.emails[-1] for t in reversed(self.turns) if t.reading.emails), None)

    def _window(self) -> list[_Turn]:
        """Customer messages since they last said thanks, goodbye or never mind."""
        start = 0
        for i, turn in enumerate(self.turns):
            closing = {Intent.THANKS, Intent.GOODBYE, Intent.CANCEL} & turn.reading.intents
            if closing and not turn.reading.intents - _SMALL_TALK:
                start = i + 1
        return self.turns[start:]

    def _ran_after(self, position: int, tools: set[str], *, ok: bool) -> bool:
        return any(
            r.position > position and r.call.function.name in tools and (r.ok or not ok)
            for r in self.runs
        )

    def goals(self) -> list[_Goal]:
        """What the customer still needs, most recent message first, then by priority."""
        window = self._window()
        goals: list[_Goal] = []
        analysed = {
            r.arguments.get("image_url") for r in self.runs if r.call.function.name == _RECEIPT.tool
        }
        receipt_turns = [t for t in window if set(t.reading.image_refs) - analysed]
        if receipt_turns:
            urls = [u for t in receipt_turns for u in t.reading.image_refs if u not in analysed]
            goals.append(_Goal(Intent.RECEIPT, receipt_turns, list(dict.fromkeys(urls))))
        case = [
            t
            for t in window
            if set(_CASE) & t.reading.intents
            and not self._ran_after(t.position, set(_RESOLVING), ok=True)
        ]
        if case:
            kinds = {i for t in case for i in t.reading.intents}
            goals.append(_Goal(next(i for i in _CASE if i in kinds), case))
        for intent in (Intent.ORDER, Intent.POLICY):
            tools = {r.tool for tier in ROUTES[intent][:1] for r in tier}
            open_turns = [
                t
                for t in window
                if intent in t.reading.intents and not self._ran_after(t.position, tools, ok=False)
            ]
            if open_turns:
                goals.append(_Goal(intent, open_turns[-1:]))
        latest = self.latest
        if (
            not goals
            and latest
            and (latest.reading.order_ids or latest.reading.emails)
            and not latest.reading.actionable
        ):
            goals.append(_Goal(Intent.ORDER, [latest]))
        if not goals and latest and (answered := self._answered_then_named(latest)):
            goals.append(_Goal(Intent.PROBLEM, [answered, latest], offered=True))
        goals.sort(key=lambda g: (-g.latest, _PRIORITY.index(g.intent)))
        return goals

    def _answered_then_named(self, latest: _Turn) -> _Turn | None:
        """The question the help centre answered just before the customer gave only their
        name (the answer offers a ticket then), unless a ticket or a person took it up."""
        if not (latest.reading.name and not latest.reading.intents) or len(self.turns) < 2:
            return None
        before = self.turns[-2]
        searched = self._ran_after(before.position, {_SEARCH.tool}, ok=False)
        taken = self._ran_after(before.position, set(_RESOLVING), ok=False)
        return (
            before if Intent.POLICY in before.reading.intents and searched and not taken else None
        )

    # Slots ------------------------------------------------------------------------------

    def _receipts(self) -> list[dict[str, Any]]:
        return [
            receipt
            for r in self.runs
            if r.call.function.name == _RECEIPT.tool
            and r.ok
            and (receipt := read_receipt(r.result or ""))
        ]

    def _issue(self, goal: _Goal) -> str | None:
        labels = list(
            dict.fromkeys(p for t in goal.turns for p in t.reading.problems or t.reading.reported)
        )
        words = list(dict.fromkeys(t.reading.words for t in goal.turns if t.reading.words))
        if goal.intent is Intent.PROBLEM and labels in ([], [GENERIC_PROBLEM]) and not goal.offered:
            described = [t for t in goal.turns if t.reading.described]
            if not described:
                return None
        if goal.intent is Intent.HUMAN and not labels and not words:
            return None
        label = " / ".join(labels) if labels else self.book.text("labels", NO_TOOL[goal.intent])
        said = " ".join(_sentence(w) for w in words)
        issue = f"{label}: {said}" if said else label
        receipts = self._receipts()
        if receipts and goal.intent in _CASE:
            issue += f". {receipt_summary(receipts[-1], self.book.currency)}"
            if mentioned := self._items(goal):
                issue += f"; items in question: {', '.join(mentioned)}"
        return issue[:1000]

    def _since(self, goal: _Goal) -> list[_Turn]:
        """Customer messages from the goal's first one on (later replies fill its slots)."""
        return [t for t in self._window() if t.position >= goal.turns[0].position]

    def _known_items(self, goal: _Goal) -> list[str]:
        """Names of items on receipts read, or on the goal's order if it was looked up."""
        order_id = self._order_id(goal)
        names: list[str] = []
        for run in self.runs:
            name = run.call.function.name
            if not run.ok or name not in {_RECEIPT.tool, _LOOKUP.tool}:
                continue
            if (
                name == _LOOKUP.tool
                and str(run.arguments.get("order_id", "")).upper() != (order_id or "").upper()
            ):
                continue
            data = read_json(run.result or "")
            if isinstance(data, dict):
                names.extend(str(i.get("name", "")) for i in receipt_items(data))
        return list(dict.fromkeys(n for n in names if n))

    def _items(self, goal: _Goal) -> list[str] | None:
        """The known items the customer mentioned (all of them for "the whole order")."""
        said = " ".join(t.reading.text.lower() for t in self._since(goal))
        known = self._known_items(goal)
        if self.book.whole_order.search(said):
            return known or None
        found = [
            name
            for name in known
            if any(
                len(w) >= 3 and re.search(rf"\b{re.escape(w)}s?\b", said)
                for w in re.findall(r"\w+", name.lower())
            )
        ]
        return found or None

    def _order_id(self, goal: _Goal) -> str | None:
        """The order the goal names, else the one the conversation was last about."""
        for turns in (self._since(goal), self._window()):
            for turn in reversed(turns):
                if turn.reading.order_ids:
                    return turn.reading.order_ids[-1]
        return None

    def slot(self, slot: Slot, goal: _Goal) -> Any:
        """The value for ``slot`` in ``goal``, or None when the customer hasn't said it."""
        if slot is Slot.NAME:
            return self.name
        if slot is Slot.ISSUE:
            return self._issue(goal)
        if slot is Slot.ORDER_ID:
            return self._order_id(goal)
        if slot is Slot.EMAIL:
            return self.email
        if slot is Slot.ITEMS:
            return self._items(goal)
        if slot is Slot.IMAGE_URL:
            return goal.image_urls[0] if goal.image_urls else None
        if query := next((t.reading.query for t in reversed(goal.turns) if t.reading.query), None):
            return query
        words = " ".join(t.reading.words for t in goal.turns if t.reading.words)
        return search_query(words, self.book) if words.strip() else None


@dataclass
class _Plan:
    """What to do for one goal: calls to make, or a question to ask, or a plain reply."""

    calls: list[tuple[Route, dict[str, Any]]] = field(default_factory=list)
    say: str = ""


def _plan(goal: _Goal, conversation: _Conversation, done: set[tuple[str, str]]) -> _Plan:
    """Call the first route whose slots are filled, or prepare a slot, or ask for it."""

    def fill(route: Route) -> dict[str, Any]:
        return {arg: conversation.slot(slot, goal) for arg, slot in route.arguments.items()}

    def fresh(route: Route, arguments: dict[str, Any]) -> bool:
        return (route.tool, json.dumps(arguments, sort_keys=True)) not in done

    for tier in ROUTES[goal.intent]:
        offered = [route for route in tier if route.tool in conversation.tools]
        if not offered:
            continue
        for route in offered:
            values = fill(route)
            if all(v is not None for v in values.values()):
                if Slot.IMAGE_URL in route.arguments.values():  # one call per image
                    return _Plan([(route, {**values, "image_url": u}) for u in goal.image_urls])
                return _Plan([(route, values)] if fresh(route, values) else [])
        questions = []
        for route in offered:
            missing = min(
                (s for s in route.arguments.values() if conversation.slot(s, goal) is None),
                key=_ASK_ORDER.index,
            )
            helper = route.prepare.get(missing)
            if helper and helper.tool in conversation.tools:
                values = fill(helper)
                if all(v is not None for v in values.values()) and fresh(helper, values):
                    return _Plan([(helper, values)])
            key = QUESTIONS.get((route.tool, missing)) or QUESTIONS[missing]
            question = conversation.book.text("questions", key)
            if missing is Slot.ITEMS and (known := conversation._known_items(goal)):
                question += " " + conversation.book.text(
                    "questions", "items_known", items=", ".join(known)
                )
            questions.append(question)
        return _Plan(say=" ".join(dict.fromkeys(questions)))
    return _Plan(say=conversation.book.text("no_tool", NO_TOOL[goal.intent]))


def _new_call(route: Route, arguments: dict[str, Any]) -> ToolCall:
    return ToolCall.make(
        f"call_{secrets.token_hex(12)}", route.tool, json.dumps(arguments, ensure_ascii=False)
    )


def _acknowledgement(goal: _Goal, book: Playbook) -> str:
    labels = [p for t in goal.turns for p in t.reading.problems]
    if not labels:
        return ""
    return next((k.acknowledgement for k in book.problems if k.label == labels[0]), "")


def _heard(reading: Reading, book: Playbook) -> str:
    """What was understood of a line nothing matched: its numbers and topic words."""
    words = topic_words(reading.words)
    said = " ".join([*reading.references, *words][:_HEARD_WORDS])
    return book.text("replies", "heard_words", words=said) if said else ""


def _small_talk(reading: Reading, name: str | None, book: Playbook) -> str:
    greet = f", {name}" if name else ""
    if reading.choices:
        first, second = (book.intents[c].topic for c in reading.choices)
        return book.text("replies", "clarify", first=first, second=second)
    if Intent.CANCEL in reading.intents:
        return book.text("replies", "cancel")
    if Intent.GOODBYE in reading.intents:
        return book.text("replies", "goodbye", name=greet)
    if Intent.THANKS in reading.intents:
        return book.text("replies", "thanks", name=greet)
    if reading.reply:
        return reading.reply
    if reading.name:
        return book.text("replies", "nice_to_meet", name=reading.name)
    if Intent.GREETING in reading.intents:
        return book.text("replies", "greeting", name=greet)
    if _ACKNOWLEDGED.match(reading.text):
        return book.text("replies", "anything_else")
    menu = book.text("replies", "off_topic")
    return " ".join(filter(None, [_heard(reading, book), menu]))


def decide(conversation: _Conversation) -> tuple[str, list[ToolCall]]:
    """The reply text and the tool calls for the next assistant message."""
    book = conversation.book
    parts: list[str] = [] if conversation.replied else [NOTICE]
    if conversation.pending:
        for run in conversation.pending:
            parts.append(
                render_result(run.call.function.name, run.arguments, run.result or "", book)
            )
        if any(not run.ok for run in conversation.pending):
            return "\n\n".join(parts), []
    latest = conversation.latest
    goals = conversation.goals()
    if latest and not conversation.pending and not any(latest in g.turns for g in goals):
        reading = latest.reading
        if not goals or reading.choices:
            parts.append(_small_talk(reading, conversation.name, book))
            return "\n\n".join(parts), []
        if Intent.GREETING in reading.intents:
            name = f", {conversation.name}" if conversation.name else ""
            parts.append(book.text("replies", "greeting_short", name=name))
        elif not (reading.name or reading.order_ids or reading.emails or reading.intents):
            parts.append(book.text("replies", "off_topic_short"))
    done = {
        (r.call.function.name, json.dumps(r.arguments, sort_keys=True)) for r in conversation.runs
    }
    calls: list[tuple[Route, dict[str, Any]]] = []
    question = ""
    for goal in goals:
        plan = _plan(goal, conversation, done)
        if plan.calls:
            calls.extend(plan.calls)
            if goal.intent is Intent.RECEIPT:
                break  # what the receipt says may matter to the other goals: read it first
        elif not question and plan.say:
            question = " ".join(filter(None, [_acknowledgement(goal, book), plan.say]))
    if calls:
        prefaces = dict.fromkeys(book.text("prefaces", route.tool, **args) for route, args in calls)
        parts.extend(prefaces)
        return " ".join(parts) if not conversation.pending else "\n\n".join(parts), [
            _new_call(route, args) for route, args in calls
        ]
    if question:
        parts.append(question)
    elif conversation.pending:
        tool = conversation.pending[-1].call.function.name
        if follow_up := book.text("follow_ups", tool):
            parts.append(follow_up)
    elif latest is None:
        parts.append(book.text("replies", "greeting", name=""))
    return "\n\n".join(parts), []


def _sentence(text: str) -> str:
    """``the driver was rude`` → ``The driver was rude.`` (for joining messages into one issue)."""
    text = text[:1].upper() + text[1:]
    return text if text[-1:] in ".!?…" else text + "."


def _words(text: str) -> int:
    return len(text.split())


class OfflineModel:
    """The built-in support policy, used when no model API is configured.

    ``local_files_allowed`` (the terminal only) lets a typed file path count as a shared
    image; over the web, paths are never looked up on the server's disk. ``profile`` is the
    profile folder whose ``intents.toml`` the customer's lines are matched to by meaning
    (default: ``HELPLINE_PROFILE``, else the built-in one); it is read on the first turn.
    """

    def __init__(
        self, *, local_files_allowed: bool = False, profile: str | Path | None = None
    ) -> None:
        self.local_files_allowed = local_files_allowed
        self.profile = profile

    @property
    def folder(self) -> Path:
        from helpline.support.profile import DEFAULT_PROFILE

        folder = self.profile or os.environ.get("HELPLINE_PROFILE") or DEFAULT_PROFILE
        return Path(folder).expanduser().resolve()

    @property
    def matcher(self) -> IntentMatcher | None:
        return matcher_for(self.folder)

    @property
    def playbook(self) -> Playbook:
        """The profile's wording and rules (read on the first turn)."""
        return playbook_for(self.folder)

    @property
    def name(self) -> str:
        return "offline assistant (built in, no AI model)"

    async def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        response_format: ResponseFormat | None = None,
    ) -> AsyncIterator[ModelEvent]:
        """Decide the next assistant message and stream it like a model would."""
        if response_format is not None:
            raise ModelError(
                "The offline assistant can't produce structured output or read images. "
                "Set XAI_API_KEY (or HELPLINE_BASE_URL and HELPLINE_API_KEY) to use a model that can."
            )
        offered = {str(t.get("function", {}).get("name")) for t in tools or []}
        try:
            book, matcher = self.playbook, self.matcher
        except (RepliesError, IntentsError) as error:  # the operator's file: say which and how
            raise ModelError(f"The offline assistant can't start: {error}") from error
        text, calls = decide(
            _Conversation(messages, offered, self.local_files_allowed, book, matcher)
        )
        prompt = sum(_words(_message_text(m.get("content"))[0]) for m in messages)
        completion = _words(text) + sum(_words(c.function.arguments) for c in calls)
        for event in reply_events(text, calls, Usage(prompt, completion)):
            yield event

    async def aclose(self) -> None:
        """Nothing to release."""
