"""Testing the assistant before customers see it: scenarios in YAML, run K times each on a
fresh database against the configured backend, reported as pass^1 and pass^K."""

from __future__ import annotations

from helpline.evaluation.runner import ScenarioResult, SuiteResult, SuiteRunner
from helpline.evaluation.suite import Scenario, Suite, SuiteError, load_suite

__all__ = [
    "Scenario",
    "ScenarioResult",
    "Suite",
    "SuiteError",
    "SuiteResult",
    "SuiteRunner",
    "load_suite",
]
