"""``helpline eval``: run a suite of scenarios against the configured backend."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from helpline.cli_options import JsonOption

if TYPE_CHECKING:
    from helpline.config import Settings
    from helpline.evaluation import ScenarioResult, SuiteResult, SuiteRunner
    from helpline.models.base import ChatModel

CUSTOMER_ENV = "HELPLINE_EVAL_CUSTOMER_"
"""``HELPLINE_EVAL_CUSTOMER_BASE_URL``, ``_API_KEY``, ``_MODEL``: the model that plays
simulated customers (default: the configured HTTP backend)."""


def evaluate(
    suite_file: Annotated[Path, typer.Argument(help="The suite: a YAML file of scenarios.")],
    repeat: Annotated[
        int, typer.Option("--repeat", "-k", min=1, max=100, help="Runs per scenario (K).")
    ] = 1,
    only: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Run only this scenario (repeatable)."),
    ] = None,
    json_output: JsonOption = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (HELPLINE_MODEL).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible endpoint (HELPLINE_BASE_URL)."),
    ] = None,
    gguf: Annotated[
        str | None, typer.Option("--gguf", help="Run a local GGUF model file (HELPLINE_GGUF).")
    ] = None,
) -> None:
    """Run each scenario K times on a fresh database; exit 1 when the suite's threshold is missed."""
    from helpline.cli import _fail, _print_json, _settings
    from helpline.context_budget import budget_for
    from helpline.evaluation import SuiteError, SuiteRunner, load_suite
    from helpline.evaluation.report import json_report, junit_report, scenario_line, text_report
    from helpline.pricing import ModelCatalog
    from helpline.support import ProfileError, load_profile

    if json_output and junit is not None:
        _fail("Choose one of --json and --junit.")
    try:
        suite = load_suite(suite_file)
    except SuiteError as exc:
        _fail(f"The suite cannot be run: {exc}", code=2)
    if only:
        unknown = sorted(set(only) - {s.id for s in suite.scenarios})
        if unknown:
            _fail(f"The suite has no scenario {', '.join(unknown)}. Check --scenario.", code=2)
        suite = suite.model_copy(update={"scenarios": [s for s in suite.scenarios if s.id in only]})
    settings = _settings(model=model, base_url=base_url, gguf=gguf)
    if suite.profile is not None:
        settings = dataclasses.replace(settings, profile=suite.profile_path())
    try:
        profile = load_profile(settings.profile)
    except ProfileError as exc:
        _fail(f"The company profile could not be loaded: {exc}", code=2)
    backend = settings.build_model(local_files_allowed=True)
    catalog = ModelCatalog.load(settings.prices_file)
    model_id = getattr(backend, "model", None) or backend.name
    runner = SuiteRunner(
        suite,
        backend,
        profile,
        vision_model=settings.build_vision_model(),
        customer_model=_customer_model(settings),
        budget=budget_for(backend, model_id, catalog, settings.context_tokens),
        catalog=catalog,
        model_id=model_id,
    )

    def show(result: ScenarioResult) -> None:
        if not json_output:
            sys.stderr.write(scenario_line(result) + "\n")
            sys.stderr.flush()

    result = asyncio.run(_run(runner, repeat, show))
    if junit is not None:
        junit.write_bytes(junit_report(result))
    if json_output:
        _print_json(json_report(result))
    else:
        sys.stdout.write(text_report(result))
    raise typer.Exit(0 if result.passed else 1)


async def _run(
    runner: SuiteRunner, repeat: int, show: Callable[[ScenarioResult], None]
) -> SuiteResult:
    try:
        return await runner.run(repeat, show)
    finally:
        await runner.model.aclose()
        if runner.customer_model is not None:
            await runner.customer_model.aclose()


def _customer_model(settings: Settings) -> ChatModel | None:
    """The model that plays simulated customers: its own endpoint, else the HTTP backend."""
    base_url = os.environ.get(CUSTOMER_ENV + "BASE_URL")
    if base_url:
        chosen = dataclasses.replace(
            settings,
            base_url=base_url,
            api_key=os.environ.get(CUSTOMER_ENV + "API_KEY"),
            model=os.environ.get(CUSTOMER_ENV + "MODEL") or settings.model,
            api_style="chat",
            gguf=None,
        )
        return chosen.build_model()
    if settings.backend in ("xai", "openai-compatible"):
        return settings.build_model()
    return None
