"""Prometheus metrics of the engine: turns, time to first token, tools and tokens.

The server shows them at ``GET /metrics`` (admin key). With several worker processes,
``helpline serve`` gives them a shared folder (``PROMETHEUS_MULTIPROC_DIR``) so that every
scrape sums all workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Container

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from helpline.events import TurnDone, TurnError, TurnEvent, TurnText, TurnToolCall, TurnToolResult

_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

TURNS = Counter("helpline_turns", "Customer messages answered, by how the turn ended.", ["outcome"])
TURNS_IN_PROGRESS = Gauge(
    "helpline_turns_in_progress", "Turns being answered now.", multiprocess_mode="livesum"
)
FIRST_TOKEN = Histogram(
    "helpline_first_token_seconds",
    "From a customer's message to the first words of the answer.",
    buckets=_SECONDS,
)
TURN_SECONDS = Histogram(
    "helpline_turn_seconds", "From a customer's message to the end of the answer.", buckets=_SECONDS
)
TOOL_CALLS = Counter(
    "helpline_tool_calls", "Tool calls, by tool and whether they worked.", ["tool", "outcome"]
)
TOOL_SECONDS = Histogram(
    "helpline_tool_seconds", "How long tools take.", ["tool"], buckets=_SECONDS
)
MODEL_TOKENS = Counter("helpline_model_tokens", "Tokens the model read and wrote.", ["kind"])
MODEL_TOKENS_BY_MODEL = Counter(
    "helpline_model_tokens_by_model",
    "Tokens by model: prompt (cached included), cached, completion and reasoning.",
    ["model", "kind"],
)
MODEL_COST = Counter(
    "helpline_model_cost_usd", "What the model's replies cost, in US dollars.", ["model"]
)


class TurnMeter:
    """Records one turn from the events it emits (one cheap check per streamed token)."""

    def __init__(self, tool_names: Container[str]) -> None:
        self._tool_names = tool_names
        self._started = time.perf_counter()
        self._answering = False
        self._tools_started: dict[str, float] = {}
        self._outcome = "crashed"  # until the turn ends with done or error
        TURNS_IN_PROGRESS.inc()

    def saw(self, event: TurnEvent) -> None:
        if type(event) is TurnText:
            if not self._answering:
                self._answering = True
                FIRST_TOKEN.observe(time.perf_counter() - self._started)
        elif isinstance(event, TurnToolCall):
            self._tools_started[event.call.id] = time.perf_counter()
        elif isinstance(event, TurnToolResult):
            tool = self._label(event.call.function.name)
            TOOL_CALLS.labels(tool, "error" if event.is_error else "ok").inc()
            started = self._tools_started.pop(event.call.id, None)
            if started is not None:
                TOOL_SECONDS.labels(tool).observe(time.perf_counter() - started)
        elif isinstance(event, TurnDone):
            self._outcome = "answered"
            MODEL_TOKENS.labels("prompt").inc(event.usage.prompt_tokens)
            MODEL_TOKENS.labels("completion").inc(event.usage.completion_tokens)
            if event.model is not None:
                _count_by_model(event)
        elif isinstance(event, TurnError):
            self._outcome = "error"

    def ended(self, *, crashed: bool) -> None:
        """The turn is over; ``crashed``: it failed unexpectedly (a bug, not the model or the
        database), even if the customer was then sent an error."""
        TURNS.labels("crashed" if crashed else self._outcome).inc()
        TURN_SECONDS.observe(time.perf_counter() - self._started)
        TURNS_IN_PROGRESS.dec()

    def _label(self, tool: str) -> str:
        # A model may name tools that don't exist: one label for those keeps the series few.
        return tool if tool in self._tool_names else "unknown"


def _count_by_model(done: TurnDone) -> None:
    model, usage = done.model or "", done.usage
    MODEL_TOKENS_BY_MODEL.labels(model, "prompt").inc(usage.prompt_tokens)
    MODEL_TOKENS_BY_MODEL.labels(model, "cached").inc(usage.cached_prompt_tokens)
    MODEL_TOKENS_BY_MODEL.labels(model, "completion").inc(usage.completion_tokens)
    MODEL_TOKENS_BY_MODEL.labels(model, "reasoning").inc(usage.reasoning_tokens)
    if done.cost_usd is not None:
        MODEL_COST.labels(model).inc(done.cost_usd)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
