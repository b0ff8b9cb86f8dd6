"""`helpline eval`: the shipped suite passes against the offline assistant; a broken refund rule
fails it with a readable report; simulated customers are played by a model over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from helpline.cli import app
from helpline.evaluation import SuiteError, load_suite
from helpline.evaluation.matchers import mismatch
from tests.fake_openai import FakeOpenAI, text_reply, tool_call_reply

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "evals" / "default.yaml"
REFUND_SCENARIOS = ("refund-outside-window", "refund-not-delivered", "refund-cancelled-order")


def _offline_env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HELPLINE_", "XAI_"))}
    return {**clean, "NO_COLOR": "1", **extra}


def test_the_shipped_suite_passes_offline(tmp_path: Path) -> None:
    suite = load_suite(SHIPPED)
    assert len(suite.scenarios) >= 30
    junit = tmp_path / "eval.xml"

    result = CliRunner().invoke(
        app, ["eval", str(SHIPPED), "--junit", str(junit)], env=_offline_env()
    )

    assert result.exit_code == 0, result.stdout
    assert "PASSED" in result.stdout and "pass^1 1.000" in result.stdout
    cases = ElementTree.parse(junit).getroot()
    assert cases.get("tests") == str(len(suite.scenarios)) and cases.get("failures") == "0"


def test_a_broken_refund_rule_fails_the_suite_with_a_readable_report() -> None:
    """The refund rules switched off in the order tools: refunds the profile forbids go through."""
    breaking = (
        "import sys, helpline.support.orders as orders; "
        "assert callable(orders._check_refundable), 'the refund rules moved'; "
        "orders._check_refundable = lambda *args: None; "
        "from helpline.cli import main; sys.argv = ['helpline', *sys.argv[1:]]; main()"
    )
    chosen = [arg for scenario in REFUND_SCENARIOS for arg in ("--scenario", scenario)]
    run = subprocess.run(
        [sys.executable, "-c", breaking, "eval", str(SHIPPED), *chosen],
        capture_output=True,
        text=True,
        env=_offline_env(),
        timeout=120,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    report = run.stdout
    assert "FAIL refund-outside-window" in report
    assert "needs pass^1 >= 1.00: FAILED" in report
    assert "First failure of refund-outside-window (run 1 of 1): tool call request_refund" in report
    assert "in its result, rule: missing" in report  # it went to a person instead of refused
    assert "Customer: I want a refund for order DD-10190" in report  # the transcript
    assert "tool request_refund" in report


@pytest.mark.parametrize("shipped", sorted((ROOT / "evals").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_suite_reads(shipped: Path) -> None:
    assert load_suite(shipped).scenarios


def test_repeated_runs_give_pass_1_and_pass_k_as_json(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        """
name: two scenarios
scenarios:
  - id: greets
    customer: {turns: ["hi"]}
    expect: {reply_contains: ["What can I do for you"]}
  - id: wrongly-expects-a-ticket
    customer: {turns: ["hi"]}
    expect: {ticket_count: 1}
""",
        encoding="utf-8",
    )

    result = CliRunner().invoke(app, ["eval", str(suite), "-k", "2", "--json"], env=_offline_env())

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["repeat"], report["pass_1"], report["pass_k"], report["passed"]) == (
        2,
        0.5,
        0.5,
        False,
    )
    assert report["tokens"] > 0 and report["cost_usd"] == 0  # the offline assistant is free
    greets, wrong = report["scenarios"]
    assert (greets["passes"], greets["pass_k"], greets["first_failure"]) == (2, True, None)
    assert wrong["passes"] == 0
    assert wrong["first_failure"]["check"] == "ticket count"
    assert wrong["first_failure"]["detail"] == "expected 1 ticket(s), found 0"
    assert wrong["first_failure"]["transcript"][0] == "Customer: hi"


def test_a_simulated_customer_is_played_by_a_model(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """The customer's side comes from a model over HTTP; the desk is the offline assistant."""
    suite = tmp_path / "simulated.yaml"
    suite.write_text(
        """
name: simulated customers
scenarios:
  - id: omar-wants-his-garlic-bread-back
    customer:
      persona: Omar, in a hurry, writes short messages
      goal: a refund for the garlic bread missing from order DD-10231
      facts: {email: omar@example.com, order: DD-10231}
      email: omar@example.com
    expect:
      tool_calls:
        - name: request_refund
          arguments: {order_id: DD-10231, items: {contains: Garlic Bread}}
""",
        encoding="utf-8",
    )
    fake_openai.script(
        text_reply("hi, I want a refund for order DD-10231"),
        text_reply("omar@example.com"),
        text_reply("the garlic bread was missing"),
        text_reply("thanks ###STOP###"),
    )
    env = _offline_env(
        HELPLINE_EVAL_CUSTOMER_BASE_URL=fake_openai.base_url,
        HELPLINE_EVAL_CUSTOMER_MODEL="fake-model",
        HELPLINE_EVAL_CUSTOMER_API_KEY="test",
    )

    result = CliRunner().invoke(app, ["eval", str(suite)], env=env)

    assert result.exit_code == 0, result.stdout
    first = fake_openai.requests[0].body["messages"]
    assert "a refund for the garlic bread" in first[0]["content"]  # the goal, in its system prompt
    assert '"omar@example.com"' in first[0]["content"]  # the hidden facts
    second = fake_openai.requests[1].body["messages"]
    assert second[-1]["role"] == "user" and "email address" in second[-1]["content"]


def test_the_suite_runs_against_an_openai_compatible_model(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    """The configured backend answers: here a model over HTTP that files a nameless ticket."""
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        """
name: over HTTP
scenarios:
  - id: login
    customer: {turns: ["I can't log in"]}
    expect:
      tool_calls: [{name: create_customer_ticket, arguments: {issue: {contains: log in}}}]
""",
        encoding="utf-8",
    )
    fake_openai.script(
        tool_call_reply(
            [("call_1", "create_customer_ticket", '{"name": "Unknown", "issue": "Cannot log in"}')]
        ),
        text_reply("I've filed ticket #1."),
    )
    env = _offline_env(
        HELPLINE_BASE_URL=fake_openai.base_url, HELPLINE_API_KEY="test", HELPLINE_MODEL="fake-model"
    )

    result = CliRunner().invoke(app, ["eval", str(suite)], env=env)

    assert result.exit_code == 1, result.stdout
    assert "fake-model" in result.stdout  # the backend the report names
    assert "forbid ticket_without_name: a general ticket was filed without a name ('Unknown')" in (
        result.stdout
    )


def test_a_simulated_customer_without_a_model_is_skipped(tmp_path: Path) -> None:
    suite = tmp_path / "simulated.yaml"
    suite.write_text(
        "name: s\nscenarios:\n  - id: a\n    customer: {goal: get help}\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["eval", str(suite)], env=_offline_env())
    assert result.exit_code == 1  # nothing ran: the threshold cannot be met
    assert "skipped: a simulated customer needs a model" in result.stdout


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: x\nscenarios: [", "is not valid YAML"),
        ("name: x\nscenarios: []\n", "scenarios"),
        ("name: x\nscenarios:\n  - id: a\n    customer: {turns: [hi], goal: g}\n", "either turns"),
        ("name: x\nscenarios:\n  - id: a\n    customer: {turns: [hi]}\n    expect: {forbid: [x]}\n", "forbid"),
        ("name: x\nscenarios:\n  - {id: a, customer: {turns: [hi]}}\n  - {id: a, customer: {turns: [hi]}}\n", "unique"),
    ],
)  # fmt: skip
def test_a_broken_suite_says_what_to_fix(tmp_path: Path, text: str, problem: str) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(text, encoding="utf-8")
    with pytest.raises(SuiteError, match=problem):
        load_suite(suite)
    result = CliRunner().invoke(app, ["eval", str(suite)], env=_offline_env())
    assert result.exit_code == 2 and problem in result.stderr.replace("\n", " ")


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ("DD-10231", "dd-10231", True),
        ({"contains": "Garlic"}, ["Margherita Pizza", "Garlic Bread"], True),
        ({"contains": "Tiramisu"}, ["Garlic Bread"], False),
        ([{"contains": "Pizza"}, {"contains": "Bread"}], ["Garlic Bread", "Pizza"], True),
        ({"lte": 2499}, 2500, False),
        ({"matches": r"^DD-\d+$"}, "DD-1", True),
        ({"one_of": [1, 2]}, 3, False),
        ({"approved": False, "rule": "refund_window"}, {"approved": False, "rule": "x"}, False),
        ({"absent": True}, None, True),
        (True, 1, False),
        ({"not": "open"}, "closed", True),
    ],
)
def test_matchers(expected: Any, actual: Any, ok: bool) -> None:
    assert (mismatch(expected, actual) is None) is ok
