"""A suite's result for people (text), for scripts (JSON) and for CI (JUnit XML)."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from helpline.evaluation.runner import ScenarioResult, SuiteResult


def scenario_line(result: ScenarioResult) -> str:
    """One line per scenario: passed runs, and the first failing check."""
    scenario_id = result.scenario.id
    if result.skipped:
        return f"  - {scenario_id:<40} skipped: {result.skipped}"
    mark = "ok" if result.pass_k else "FAIL"
    line = f"  {mark:<4} {scenario_id:<40} {result.passes}/{len(result.runs)}"
    failure = _first_failure(result)
    if failure is not None:
        _run, check = failure
        line += f"  {check.name}: {check.detail}"
    return line


def text_report(result: SuiteResult) -> str:
    """The whole report: a line per scenario, the totals, then each failing scenario's first
    failing check with its transcript."""
    suite = result.suite
    lines = [
        f"{suite.name} · {result.backend} · {len(suite.scenarios)} scenarios × {result.repeat}",
        *(scenario_line(s) for s in result.scenarios),
        "",
        *_totals(result),
    ]
    for scenario in result.scenarios:
        failure = _first_failure(scenario)
        if failure is None:
            continue
        run, check = failure
        lines += [
            "",
            f"First failure of {scenario.scenario.id} (run {run + 1} of {len(scenario.runs)}): "
            f"{check.name}",
            f"  {check.detail}",
            "  Transcript:",
            *(
                "    " + line.replace("\n", "\n      ")
                for line in scenario.runs[run].record.transcript()
            ),
        ]
    return "\n".join(lines) + "\n"


def _totals(result: SuiteResult) -> list[str]:
    suite = result.suite
    k = result.repeat
    wanted = f"pass^1 >= {suite.threshold:.2f}"
    if suite.threshold_pass_k is not None:
        wanted += f" and pass^{k} >= {suite.threshold_pass_k:.2f}"
    skipped = len(result.scenarios) - len(result.ran)
    verdict = "PASSED" if result.passed else "FAILED"
    scores = f"pass^1 {result.pass_1:.3f}" + (f" · pass^{k} {result.pass_k:.3f}" if k > 1 else "")
    lines = [
        f"{scores} · needs {wanted}: {verdict}",
        f"model use: {result.tokens:,} tokens, ${result.cost_usd:.4f}",
    ]
    if skipped:
        lines.append(f"{skipped} scenario(s) skipped")
    return lines


def _first_failure(result: ScenarioResult) -> tuple[int, Any] | None:
    for number, run in enumerate(result.runs):
        check = run.first_failure
        if check is not None:
            return number, check
    return None


def json_report(result: SuiteResult) -> dict[str, Any]:
    scenarios = []
    for s in result.scenarios:
        failure = _first_failure(s)
        entry: dict[str, Any] = {
            "id": s.scenario.id,
            "runs": len(s.runs),
            "passes": s.passes,
            "pass_1": s.pass_1,
            "pass_k": s.pass_k,
            "skipped": s.skipped,
            "first_failure": None,
            "tokens": sum(r.record.tokens for r in s.runs),
            "cost_usd": sum(r.record.cost_usd for r in s.runs),
        }
        if failure is not None:
            run, check = failure
            entry["first_failure"] = {
                "run": run + 1,
                "check": check.name,
                "detail": check.detail,
                "transcript": s.runs[run].record.transcript(),
            }
        scenarios.append(entry)
    return {
        "suite": result.suite.name,
        "backend": result.backend,
        "repeat": result.repeat,
        "pass_1": result.pass_1,
        "pass_k": result.pass_k,
        "threshold": result.suite.threshold,
        "threshold_pass_k": result.suite.threshold_pass_k,
        "passed": result.passed,
        "tokens": result.tokens,
        "cost_usd": result.cost_usd,
        "scenarios": scenarios,
    }


def junit_report(result: SuiteResult) -> bytes:
    """One test case per scenario; a scenario fails when any of its runs failed."""
    failures = sum(1 for s in result.ran if not s.pass_k)
    skipped = len(result.scenarios) - len(result.ran)
    root = ElementTree.Element(
        "testsuite",
        name=result.suite.name,
        tests=str(len(result.scenarios)),
        failures=str(failures),
        skipped=str(skipped),
    )
    for s in result.scenarios:
        case = ElementTree.SubElement(
            root, "testcase", classname="helpline.eval", name=s.scenario.id
        )
        if s.skipped:
            ElementTree.SubElement(case, "skipped", message=s.skipped)
            continue
        failure = _first_failure(s)
        if failure is not None:
            run, check = failure
            element = ElementTree.SubElement(
                case,
                "failure",
                message=f"{check.name}: {check.detail} ({s.passes}/{len(s.runs)} runs passed)",
            )
            element.text = "\n".join(s.runs[run].record.transcript())
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
