"""Running a suite: each scenario K times, each run on a fresh database, against one backend.

The databases are scratch SQLite files (a migrated and seeded template, copied per run), so
a suite never touches the configured database and runs start in milliseconds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from helpline.assistant import Assistant
from helpline.context_budget import ContextBudget
from helpline.evaluation.checks import Check, Rules, run_checks
from helpline.evaluation.customers import CustomerSide, ScriptedCustomer, SimulatedCustomer
from helpline.evaluation.record import RunRecord, capture
from helpline.evaluation.suite import Scenario, Suite
from helpline.events import TurnError, TurnText
from helpline.messages import UserMessage
from helpline.models.base import ChatModel
from helpline.pricing import ModelCatalog
from helpline.store import Store
from helpline.support import Profile, support_tools
from helpline.support.demo import seed_demo_orders


@dataclass(frozen=True)
class RunResult:
    passed: bool
    checks: list[Check]
    record: RunRecord

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.passed), None)


@dataclass
class ScenarioResult:
    scenario: Scenario
    runs: list[RunResult] = field(default_factory=list)
    skipped: str | None = None
    """Why the scenario did not run (a simulated customer with no model to play it)."""

    @property
    def passes(self) -> int:
        return sum(r.passed for r in self.runs)

    @property
    def pass_1(self) -> float:
        """The share of runs that passed."""
        return self.passes / len(self.runs) if self.runs else 0.0

    @property
    def pass_k(self) -> bool:
        """Whether every run passed."""
        return bool(self.runs) and self.passes == len(self.runs)


@dataclass
class SuiteResult:
    suite: Suite
    repeat: int
    backend: str
    scenarios: list[ScenarioResult]

    @property
    def ran(self) -> list[ScenarioResult]:
        return [s for s in self.scenarios if s.skipped is None]

    @property
    def pass_1(self) -> float:
        """τ-bench's pass^1: the chance one run of a scenario passes, over the scenarios."""
        ran = self.ran
        return sum(s.pass_1 for s in ran) / len(ran) if ran else 0.0

    @property
    def pass_k(self) -> float:
        """pass^K: the share of scenarios that passed all K runs."""
        ran = self.ran
        return sum(s.pass_k for s in ran) / len(ran) if ran else 0.0

    @property
    def tokens(self) -> int:
        return sum(r.record.tokens for s in self.scenarios for r in s.runs)

    @property
    def cost_usd(self) -> float:
        return sum(r.record.cost_usd for s in self.scenarios for r in s.runs)

    @property
    def passed(self) -> bool:
        """The suite's thresholds are met."""
        if not self.ran or self.pass_1 < self.suite.threshold:
            return False
        return self.suite.threshold_pass_k is None or self.pass_k >= self.suite.threshold_pass_k


Progress = Callable[[ScenarioResult], None]


class SuiteRunner:
    """Runs a suite's scenarios against ``model`` (the configured backend)."""

    def __init__(
        self,
        suite: Suite,
        model: ChatModel,
        profile: Profile,
        *,
        vision_model: ChatModel | None = None,
        customer_model: ChatModel | None = None,
        budget: ContextBudget | None = None,
        catalog: ModelCatalog | None = None,
        model_id: str | None = None,
    ) -> None:
        """``budget``, ``catalog`` and ``model_id`` as for :class:`Assistant`: what a request
        may hold, and the prices each reply's cost is counted at."""
        self.suite = suite
        self.model = model
        self.profile = profile
        self.vision_model = vision_model
        self.customer_model = customer_model
        self.budget, self.catalog, self.model_id = budget, catalog, model_id
        self.tools = support_tools(profile)
        self.rules = Rules(refund_window_days=profile.settings.refund_window_days)

    async def run(self, repeat: int = 1, progress: Progress | None = None) -> SuiteResult:
        with tempfile.TemporaryDirectory(prefix="helpline-eval-") as scratch:
            folder = Path(scratch)
            template = folder / "template.db"
            store = Store.open(f"sqlite:///{template}")
            if self.suite.seed == "demo":
                seed_demo_orders(store)
            store.close()
            results = []
            for scenario in self.suite.scenarios:
                result = await self._scenario(scenario, repeat, template, folder)
                results.append(result)
                if progress is not None:
                    progress(result)
        return SuiteResult(self.suite, repeat, self.model.name, results)

    async def _scenario(
        self, scenario: Scenario, repeat: int, template: Path, folder: Path
    ) -> ScenarioResult:
        result = ScenarioResult(scenario)
        if scenario.customer.simulated and self.customer_model is None:
            result.skipped = (
                "a simulated customer needs a model to play it: set HELPLINE_EVAL_CUSTOMER_BASE_URL "
                "(and _MODEL, _API_KEY), or run against an HTTP backend"
            )
            return result
        for run in range(repeat):
            database = folder / f"{scenario.id}-{run}.db"
            shutil.copyfile(template, database)
            store = Store.open(f"sqlite:///{database}")
            try:
                record = await self._run_once(scenario, store)
            finally:
                store.close()
                database.unlink(missing_ok=True)
            checks = run_checks(scenario.expect, record, scenario.customer, self.rules)
            result.runs.append(RunResult(all(c.passed for c in checks), checks, record))
        return result

    def _customer(self, scenario: Scenario) -> CustomerSide:
        customer = scenario.customer
        if customer.turns is not None:
            folder = str(self.suite.path.parent) if self.suite.path else "."
            return ScriptedCustomer(
                [Template(t).safe_substitute(suite_dir=folder) for t in customer.turns]
            )
        assert self.customer_model is not None
        return SimulatedCustomer(self.customer_model, customer, self.profile.name)

    async def _run_once(self, scenario: Scenario, store: Store) -> RunRecord:
        assistant = Assistant(
            self.model,
            store,
            self.tools,
            self.profile.system_prompt,
            vision_model=self.vision_model,
            local_files_allowed=True,  # the suite's author runs it: its receipt files are read
            budget=self.budget,
            catalog=self.catalog,
            model_id=self.model_id,
        )
        conversation_id = assistant.new_conversation()
        customer = self._customer(scenario)
        record = RunRecord()
        reply: str | None = None
        try:
            while (line := await customer.next_line(reply)) is not None:
                record.customer_lines.append(line)
                parts: list[str] = []
                async for event in assistant.run_turn(conversation_id, UserMessage(content=line)):
                    if isinstance(event, TurnText):
                        parts.append(event.delta)
                    elif isinstance(event, TurnError):
                        parts.append(event.message)
                        if event.detail:
                            record.error = event.detail
                reply = "".join(parts)
                if record.error:
                    break
        except Exception as exc:  # a customer model that fails is the run's failure, reported
            record.error = f"{type(exc).__name__}: {exc}"
        capture(store, conversation_id, record)
        return record
