"""One turn's model requests: what each sent within the context budget, and what each cost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helpline.context_budget import ContextBudget, Fitted
from helpline.models.base import Usage
from helpline.pricing import ModelCatalog
from helpline.store import ReplyUsage

_REMEMBERED_CUTS = 10_000
"""Conversations whose cut a process remembers (a forgotten one is recomputed, once)."""


class ContextKeeper:
    """Fits each request into the budget, keeping a conversation's cut from one request to
    the next while it fits (so the start of what is sent stays the same)."""

    def __init__(self, budget: ContextBudget | None) -> None:
        self.budget = budget
        self._cuts: dict[str, int] = {}

    def fit(
        self,
        conversation_id: str,
        history: list[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None,
    ) -> Fitted:
        """What to send for ``history``: all of it when there is no budget or it fits."""
        if self.budget is None:
            return Fitted(history, 0, None, 0)
        fitted = self.budget.fit(history, tools, keep_cut=self._cuts.get(conversation_id, 0))
        if fitted.left_out:
            if len(self._cuts) >= _REMEMBERED_CUTS and conversation_id not in self._cuts:
                del self._cuts[next(iter(self._cuts))]
            self._cuts[conversation_id] = fitted.left_out
        return fitted


class TurnLedger:
    """The model replies of one turn, priced as they come; ``take`` hands over the ones to
    store (a reply that used no tokens and left nothing out is not worth a row)."""

    def __init__(self, model: str, catalog: ModelCatalog) -> None:
        self.model = model
        self._catalog = catalog
        self._pending: list[ReplyUsage] = []
        self._costs: list[float | None] = []

    def add(self, usage: Usage, sent: Fitted) -> None:
        cost = self._catalog.cost_usd(self.model, usage) if usage.total_tokens else 0.0
        self._costs.append(cost)
        if usage.total_tokens or sent.left_out:
            self._pending.append(
                ReplyUsage(
                    model=self.model,
                    prompt_tokens=usage.prompt_tokens,
                    cached_tokens=usage.cached_prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    reasoning_tokens=usage.reasoning_tokens,
                    cost_usd=cost,
                    left_out=sent.left_out,
                    context_note=sent.note,
                )
            )

    @property
    def cost_usd(self) -> float | None:
        """What the turn's replies cost, or ``None`` when a reply's price is unknown."""
        if any(cost is None for cost in self._costs):
            return None
        return round(sum(cost or 0.0 for cost in self._costs), 10)

    def take(self) -> list[ReplyUsage]:
        taken, self._pending = self._pending, []
        return taken
