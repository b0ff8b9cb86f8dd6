"""A customer the business signed in, as every part of Helpline sees them (no dependencies, so
even a model that reads the prompt by rule can use it)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VerifiedCustomer:
    """A customer whose identity the business's backend signed: its own id for them (``sub``),
    their email address and name."""

    id: str
    email: str
    name: str

    def prompt_note(self) -> str:
        """What the model is told about whom it is talking to (:meth:`from_prompt` reads it)."""
        return (
            f"The customer is signed in as {self.name} ({self.email}). Their own orders open "
            "without asking for an email address; leave the email out of order look-ups."
        )

    @classmethod
    def from_prompt(cls, prompt: str) -> VerifiedCustomer | None:
        """The signed-in customer a system prompt names (for models that read it by rule)."""
        found = _PROMPT_NOTE.search(prompt)
        return cls("", found["email"], found["name"]) if found else None


_PROMPT_NOTE = re.compile(
    r"The customer is signed in as (?P<name>.+?) \((?P<email>[^\s()]+@[^\s()]+)\)\."
)
