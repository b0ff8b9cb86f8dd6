"""A suite of scenarios, read from YAML: who the customer is, and what must (not) happen.

A scenario's customer is *scripted* (``turns``: fixed lines) or *simulated* (``persona``,
``goal`` and hidden ``facts`` that a configured model plays). Its expectations name tool
calls (with argument matchers), the final state of the database, outcomes that must never
happen, and what replies must or must not say.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from helpline.validation import describe_errors

Forbidden = Literal[
    "refund_over_cap",
    "refund_outside_rules",
    "other_customer_data",
    "ticket_without_name",
]
"""Outcomes no scenario may reach: more refunded than an order cost; a refund the rules
forbid (order not delivered, outside the refund window, an item refunded twice); another
customer's email, name or order in a reply; a ticket filed without the customer's name."""
ALL_FORBIDDEN: tuple[Forbidden, ...] = (
    "refund_over_cap",
    "refund_outside_rules",
    "other_customer_data",
    "ticket_without_name",
)


class SuiteError(ValueError):
    """The suite file cannot be read; the message says where and what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Customer(_Strict):
    """Scripted (``turns``) or simulated (``persona`` and ``goal``, ``facts`` kept hidden)."""

    turns: list[str] | None = None
    """The customer's lines; ``$suite_dir`` stands for the suite file's folder (for receipts)."""
    persona: str | None = None
    goal: str | None = None
    facts: dict[str, Any] = Field(default_factory=dict)
    max_turns: int = Field(default=8, ge=1, le=40)
    email: str | None = None
    """The customer's own email address: whose orders they may see."""

    @model_validator(mode="after")
    def _one_kind(self) -> Customer:
        if (self.turns is None) == (self.goal is None):
            raise ValueError("give either turns (a scripted customer) or a goal (a simulated one)")
        if self.turns is not None and not self.turns:
            raise ValueError("turns is empty: give the customer at least one line")
        return self

    @property
    def simulated(self) -> bool:
        return self.turns is None


class ToolCallExpectation(_Strict):
    """A tool call that must happen: its name, and matchers for some of its arguments."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] = Field(default_factory=dict)
    """Matchers for fields of the tool's JSON result, e.g. ``{approved: true}``."""


class Expectations(_Strict):
    tool_calls: list[ToolCallExpectation] = Field(default_factory=list)
    no_tool_calls: list[str] = Field(default_factory=list)
    """Tools that must not be called at all."""
    tickets: list[dict[str, Any]] = Field(default_factory=list)
    """Each matcher must match some ticket (fields: name, issue, category, amount_cents, status)."""
    ticket_count: int | None = None
    refunds: list[dict[str, Any]] = Field(default_factory=list)
    """Each matcher must match some refund (order_id, item_name, quantity, amount_cents)."""
    refunded_cents: int | None = None
    """The total refunded in the scenario."""
    approvals: list[dict[str, Any]] = Field(default_factory=list)
    approval_count: int | None = None
    status: str | None = None
    """The conversation's status at the end (``active``, ``waiting_for_agent`` …)."""
    reply_contains: list[str] = Field(default_factory=list)
    """Each must appear in some reply (case-insensitive)."""
    reply_not_contains: list[str] = Field(default_factory=list)
    final_reply_contains: list[str] = Field(default_factory=list)
    forbid: list[Forbidden] = Field(default_factory=lambda: list(ALL_FORBIDDEN))
    """By default every forbidden outcome is checked."""


class Scenario(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    description: str = ""
    customer: Customer
    expect: Expectations = Field(default_factory=Expectations)


class Suite(_Strict):
    name: str
    description: str = ""
    profile: str | None = None
    """The profile folder (relative to the suite file); default: the configured one."""
    seed: Literal["demo", "none"] = "demo"
    """What each fresh database starts with: the demo orders, or nothing."""
    threshold: float = Field(default=1.0, ge=0, le=1)
    """The share of scenario runs that must pass (pass^1)."""
    threshold_pass_k: float | None = Field(default=None, ge=0, le=1)
    """If set, the share of scenarios that must pass all K runs."""
    scenarios: list[Scenario] = Field(min_length=1)
    path: Path | None = None

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for scenario in self.scenarios:
            if scenario.id in seen:
                raise ValueError(f"two scenarios are called {scenario.id!r}; ids must be unique")
            seen.add(scenario.id)
        return self

    def profile_path(self) -> str | None:
        if self.profile is None:
            return None
        folder = Path(self.profile)
        if not folder.is_absolute() and self.path is not None:
            folder = self.path.parent / folder
        return str(folder)


def load_suite(path: Path) -> Suite:
    """Read and check a suite file; :class:`SuiteError` says what is wrong and where."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path} must be a mapping with a name and a list of scenarios")
    try:
        return Suite.model_validate({**data, "path": path})
    except ValidationError as exc:
        raise SuiteError(f"{path}: {describe_errors(exc.errors(), whole='suite')}") from None
