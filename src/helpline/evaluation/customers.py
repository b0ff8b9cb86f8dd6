"""The customer side of a scenario: fixed lines, or a model playing a persona (as in τ-bench)."""

from __future__ import annotations

import json
from typing import Protocol

from helpline.evaluation.suite import Customer
from helpline.models.base import ChatModel, StreamRestart, TextDelta

STOP = "###STOP###"
"""What a simulated customer writes when their goal is met or cannot be met."""

_INSTRUCTIONS = """\
You are a customer writing to {company}'s support chat. Stay in character; never say you are
an AI or a simulation.

Who you are: {persona}
What you want: {goal}
What you know (say it only when it is asked for or needed, one thing at a time):
{facts}

Write one short chat message at a time, as a real customer would. Do not make up facts that
are not listed. When your goal is met, or the support desk clearly cannot help, write {stop}
on its own."""


class CustomerSide(Protocol):
    async def next_line(self, reply: str | None) -> str | None:
        """The customer's next message after the desk's ``reply`` (``None`` before the first);
        ``None`` when the customer is done."""
        ...


class ScriptedCustomer:
    """Says its lines in order, whatever the answers."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = iter(lines)

    async def next_line(self, reply: str | None) -> str | None:
        return next(self._lines, None)


class SimulatedCustomer:
    """A model plays the customer: it sees the persona, the goal and the hidden facts, and the
    desk's answers as the other side of the chat."""

    def __init__(self, model: ChatModel, customer: Customer, company: str) -> None:
        self._model = model
        self._turns_left = customer.max_turns
        facts = "\n".join(f"- {k}: {json.dumps(v)}" for k, v in customer.facts.items()) or "- none"
        system = _INSTRUCTIONS.format(
            company=company,
            persona=customer.persona or "an ordinary customer",
            goal=customer.goal,
            facts=facts,
            stop=STOP,
        )
        self._messages: list[dict[str, str]] = [{"role": "system", "content": system}]

    async def next_line(self, reply: str | None) -> str | None:
        if self._turns_left <= 0:
            return None
        self._turns_left -= 1
        heard = reply if reply is not None else "(The chat has opened. Write your first message.)"
        self._messages.append({"role": "user", "content": heard or "(no answer)"})
        text = await _complete(self._model, list(self._messages))
        self._messages.append({"role": "assistant", "content": text})
        line = text.replace(STOP, "").strip()
        return None if STOP in text or not line else line


async def _complete(model: ChatModel, messages: list[dict[str, str]]) -> str:
    """The model's whole text answer (a retried stream replaces its partial text)."""
    parts: list[str] = []
    async for event in model.stream(list(messages)):
        if isinstance(event, TextDelta):
            parts.append(event.text)
        elif isinstance(event, StreamRestart):
            parts.clear()
    return "".join(parts).strip()
