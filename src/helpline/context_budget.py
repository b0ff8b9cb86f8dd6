"""Long conversations within the model's context window: what one request sends.

A request's budget is the model's context window less its output limit. When the whole
history does not fit, the oldest turns are left out: the system prompt always stays, an
assistant's tool calls and their results go or stay together, and what tools established
in the part left out (ticket and order numbers, receipt totals) stays in a short note right
after the system prompt. Once a conversation is cut, the same cut is kept while it fits, so
the request's beginning stays the same from turn to turn (and the provider's cache keeps
serving it).

Tokens are estimated, not counted: a third of the UTF-8 bytes (English runs near a quarter,
so the estimate errs on the safe side), a little per message and a fixed amount per image.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from helpline.config import ConfigError
from helpline.models.base import ChatModel, ModelError
from helpline.pricing import ModelCatalog
from helpline.tools import is_error_result

DEFAULT_CONTEXT_TOKENS = 32_768
"""The window assumed for a model the catalog does not know (set HELPLINE_CONTEXT_TOKENS)."""
IMAGE_TOKENS = 1_600
"""What one image is assumed to cost (providers bill a large image at roughly this)."""
MESSAGE_TOKENS = 4
"""Each message's own overhead (its role and separators)."""
NOTE_MAX_CHARS = 2_400
"""The longest the note of facts may be; beyond it, facts in its middle are left out."""
FACT_MAX_CHARS = 200
REFILL = 0.75
"""A new cut leaves this share of the budget used, so the next turns fit without a new cut."""
RESPONSE_ID = "response_id"
"""The key a stored answer keeps its provider response id under (for chaining requests)."""
CUT_MARKER = "\n[Cut here to fit the model's context window.]"


class ContextTooSmall(ModelError):
    """Even the system prompt, the tools and the customer's message do not fit the window."""


@dataclass(frozen=True)
class Fitted:
    """What one request sends: ``messages``, with the ``left_out`` history messages after the
    system prompt replaced by ``note`` (``None`` when nothing was left out)."""

    messages: list[dict[str, Any]]
    left_out: int
    note: str | None
    estimated_tokens: int


@dataclass(frozen=True)
class ContextBudget:
    """How much of a model's context window one request may fill."""

    context_tokens: int
    output_tokens: int

    def __post_init__(self) -> None:
        if self.context_tokens <= self.output_tokens:
            raise ConfigError(
                f"A context window of {self.context_tokens} tokens leaves no room for the "
                f"prompt beside an output limit of {self.output_tokens}; set "
                "HELPLINE_CONTEXT_TOKENS above HELPLINE_MAX_OUTPUT_TOKENS."
            )

    @property
    def input_tokens(self) -> int:
        """The most a request's prompt (messages and tools) may take."""
        return self.context_tokens - self.output_tokens

    def fit(
        self,
        history: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        *,
        keep_cut: int = 0,
    ) -> Fitted:
        """The messages to send for ``history`` (the system prompt first, if any).

        ``keep_cut`` is the number of messages the previous request of this conversation left
        out: kept while it fits. Raises :class:`ContextTooSmall` when not even the system
        prompt, the tools and the newest turn fit.
        """
        head = 1 if history and history[0].get("role") == "system" else 0
        costs = [message_tokens(m) for m in history]
        fixed = sum(costs[:head]) + (estimate_tokens(orjson.dumps(list(tools))) if tools else 0)
        total = fixed + sum(costs[head:])
        if total <= self.input_tokens:
            return Fitted(list(history), 0, None, total)
        starts = _unit_starts(history, head)
        suffix = _suffix_sums(costs)
        note_room = _NOTE_TOKENS
        question = _last_customer_message(history, head)
        cut = _chosen_cut(
            starts, suffix, fixed, note_room, self.input_tokens, head + keep_cut, question
        )
        if cut is None:
            return self._squeezed(history, head, starts[-1], fixed)
        return self._cut_at(history, head, cut, fixed + suffix[cut])

    def _cut_at(
        self, history: Sequence[dict[str, Any]], head: int, cut: int, kept_tokens: int
    ) -> Fitted:
        note = context_note(history[head:cut])
        note_message = {"role": "system", "content": note}
        sent = [*history[:head], note_message, *(_unchained(m) for m in history[cut:])]
        return Fitted(sent, cut - head, note, kept_tokens + message_tokens(note_message))

    def _squeezed(
        self, history: Sequence[dict[str, Any]], head: int, last: int, fixed: int
    ) -> Fitted:
        """Only the newest unit is left, and it is too long: its longest texts are cut."""
        room = self.input_tokens - fixed
        note = context_note(history[head:last])
        note_message = {"role": "system", "content": note}
        if message_tokens(note_message) * 4 > room:  # facts never crowd out the customer
            note_message = {"role": "system", "content": _NOTE_HEAD.format(count=last - head)}
        room -= message_tokens(note_message)
        kept = _shortened([_unchained(m) for m in history[last:]], room)
        if kept is None:
            raise ContextTooSmall(
                "The conversation's newest message does not fit the assistant model's context "
                f"window ({self.context_tokens} tokens less {self.output_tokens} for the "
                "answer). The operator should set HELPLINE_CONTEXT_TOKENS to the model's "
                "window, or shorten the system prompt."
            )
        sent = [*history[:head], note_message, *kept]
        tokens = fixed + message_tokens(note_message) + sum(map(message_tokens, kept))
        return Fitted(sent, last - head, note_message["content"], tokens)


def budget_for(
    model: ChatModel, model_id: str, catalog: ModelCatalog, context_tokens: int | None = None
) -> ContextBudget | None:
    """The budget of a model that reads tokens over HTTP (one with an output limit): its
    window from ``context_tokens`` (HELPLINE_CONTEXT_TOKENS), the catalog, or the default;
    ``None`` for the offline assistant, which reads no tokens."""
    output = getattr(model, "max_output_tokens", None)
    if not isinstance(output, int):
        return None
    window = context_tokens or catalog.context_tokens(model_id) or DEFAULT_CONTEXT_TOKENS
    return ContextBudget(window, output)


def estimate_tokens(text: str | bytes) -> int:
    """Tokens in ``text``, estimated on the safe side: a third of its UTF-8 bytes."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    return (size + 2) // 3


def message_tokens(message: dict[str, Any]) -> int:
    """A wire-form message's estimated tokens (an image part costs ``IMAGE_TOKENS``)."""
    content = message.get("content")
    images = 0
    if isinstance(content, list):
        texts = [part.get("text", "") for part in content if part.get("type") != "image_url"]
        images = len(content) - len(texts)
        rest = {k: v for k, v in message.items() if k != "content"}
        size = len(orjson.dumps(rest)) + sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
        return MESSAGE_TOKENS + (size + 2) // 3 + images * IMAGE_TOKENS
    return MESSAGE_TOKENS + estimate_tokens(orjson.dumps(message))


_NOTE_HEAD = (
    "Earlier in this conversation: its {count} oldest messages are left out here, to fit the "
    "model's context window."
)
_NOTE_FACTS = " What tools established in them (still true unless said otherwise later):\n"
_NOTE_TAIL = "\nIf the customer refers to anything else from that part, ask them."
_NOTE_TOKENS = (
    MESSAGE_TOKENS
    + estimate_tokens('{"role":"system","content":""}' + _NOTE_HEAD + "0" * 12)
    + estimate_tokens(_NOTE_FACTS + _NOTE_TAIL)
    + NOTE_MAX_CHARS  # the facts: at most that many characters, at most 3 bytes each
)
"""The most a note can cost, whatever it holds."""


def context_note(left_out: Sequence[dict[str, Any]]) -> str:
    """The note that stands in for ``left_out``: how many messages, and the facts their tool
    results established (each tool's first line, or a JSON result's plain fields)."""
    head = _NOTE_HEAD.format(count=len(left_out))
    facts = _facts(left_out)
    if not facts:
        return head + " No tool established anything in them."
    lines = _within(facts, NOTE_MAX_CHARS)
    return head + _NOTE_FACTS + "\n".join(lines) + _NOTE_TAIL


def _facts(messages: Sequence[dict[str, Any]]) -> list[str]:
    names = {
        call.get("id"): call.get("function", {}).get("name", "a tool")
        for m in messages
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or ()
    }
    facts: list[str] = []
    for m in messages:
        content = m.get("content")
        if m.get("role") != "tool" or not isinstance(content, str) or is_error_result(content):
            continue
        fact = f"- {names.get(m.get('tool_call_id'), 'a tool')}: {_fact(content)}"
        if fact not in facts:
            facts.append(fact)
    return facts


def _fact(result: str) -> str:
    """A tool result in one short line: a JSON object's plain fields, or the first line."""
    text = result.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            plain = [
                f"{key} {value}"
                for key, value in data.items()
                if isinstance(value, str | int | float | bool) and value != ""
            ]
            text = ", ".join(plain)
    line = text.splitlines()[0] if text else "(no result)"
    line = "".join(ch if ch.isprintable() else " " for ch in line)
    return line if len(line) <= FACT_MAX_CHARS else line[: FACT_MAX_CHARS - 1] + "…"


def _within(lines: list[str], limit: int) -> list[str]:
    """``lines`` within ``limit`` characters: the first third and the newest, the middle out."""
    if sum(len(line) + 1 for line in lines) <= limit:
        return lines
    first: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > limit // 3:
            break
        first.append(line)
        size += len(line) + 1
    last: list[str] = []
    for line in reversed(lines[len(first) :]):
        if size + len(line) + 1 > limit - 40:
            break
        last.insert(0, line)
        size += len(line) + 1
    skipped = len(lines) - len(first) - len(last)
    return [*first, f"- … ({skipped} more in between)", *last]


def _unit_starts(history: Sequence[dict[str, Any]], head: int) -> list[int]:
    """Where each unit after the system prompt starts: a message, or an assistant message
    with tool calls together with the tool messages after it (never split)."""
    starts: list[int] = []
    for index in range(head, len(history)):
        if history[index].get("role") != "tool" or not starts:
            starts.append(index)
    return starts


def _suffix_sums(costs: list[int]) -> list[int]:
    """``suffix[i]``: the tokens of the messages from ``i`` on."""
    suffix = [0] * (len(costs) + 1)
    for index in range(len(costs) - 1, -1, -1):
        suffix[index] = suffix[index + 1] + costs[index]
    return suffix


def _chosen_cut(
    starts: list[int],
    suffix: list[int],
    fixed: int,
    note: int,
    budget: int,
    kept_cut: int,
    question: int,
) -> int | None:
    """The first message to send after the note: the previous cut while it still fits,
    else the oldest unit start that leaves ``REFILL`` of the budget used, else the oldest
    that fits at all, never past the customer's ``question`` while a cut before it fits;
    ``None`` if only the newest unit is left and it does not fit."""
    candidates = starts[1:]  # at least the first unit goes, or there would be no cut
    if kept_cut in candidates and fixed + note + suffix[kept_cut] <= budget:
        return kept_cut
    asked = [start for start in candidates if start <= question]
    for limit, pool in ((int(budget * REFILL), asked), (budget, asked), (budget, candidates)):
        for start in pool:
            if fixed + note + suffix[start] <= limit:
                return start
    return None


def _last_customer_message(history: Sequence[dict[str, Any]], head: int) -> int:
    """Where the turn being answered starts: the last customer message (the end if none)."""
    for index in range(len(history) - 1, head - 1, -1):
        if history[index].get("role") == "user":
            return index
    return len(history)


def _unchained(message: dict[str, Any]) -> dict[str, Any]:
    """The message without its provider response id: a cut history is sent in full."""
    if RESPONSE_ID in message:
        return {k: v for k, v in message.items() if k != RESPONSE_ID}
    return message


def _shortened(messages: list[dict[str, Any]], room: int) -> list[dict[str, Any]] | None:
    """``messages`` with their longest texts cut until they fit ``room`` tokens, or ``None``."""
    messages = list(messages)
    for _ in range(len(messages)):
        over = sum(map(message_tokens, messages)) - room
        if over <= 0:
            return messages
        index = max(
            range(len(messages)),
            key=lambda i: len(c) if isinstance(c := messages[i].get("content"), str) else 0,
        )
        content = messages[index].get("content")
        if not isinstance(content, str) or not content:
            return None
        keep = max(len(content) - over * 3 - len(CUT_MARKER) * 2, 0)
        messages[index] = {**messages[index], "content": content[:keep] + CUT_MARKER}
    return messages if sum(map(message_tokens, messages)) <= room else None
