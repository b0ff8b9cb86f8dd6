"""``helpline doctor``: what is configured, and does each part answer."""

from __future__ import annotations

import importlib.util
from typing import NamedTuple

from helpline.config import Settings


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str


def _backend_check(settings: Settings) -> Check:
    backend = settings.backend
    if backend == "offline":
        return Check(
            "backend",
            True,
            "embedded offline assistant (set XAI_API_KEY, or HELPLINE_BASE_URL, to use a model)",
        )
    if backend == "gguf":
        return Check("backend", True, f"local GGUF model {settings.gguf}")
    base_url, _, model = settings.endpoint()
    return Check("backend", True, f"{backend}: {model} at {base_url}")


def _api_style_check(settings: Settings) -> Check | None:
    """Which API the HTTP backend speaks, and whether turns continue stored responses."""
    if settings.backend not in ("xai", "openai-compatible"):
        return None
    if settings.chosen_api_style == "chat":
        detail = "chat completions (POST /chat/completions); HELPLINE_API_STYLE=responses for the Responses API"
    elif settings.xai_store:
        detail = "Responses API (POST /responses): turns continue the stored response and send only new messages"
    else:
        detail = "Responses API (POST /responses), storage off (HELPLINE_XAI_STORE=false): every turn sends the whole conversation"
    return Check("API style", True, detail)


async def _endpoint_check(settings: Settings) -> Check | None:
    if settings.backend not in ("xai", "openai-compatible"):
        return None
    import httpx

    base_url, api_key, _ = settings.endpoint()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"{base_url.rstrip('/')}/models", headers=headers)
    except httpx.HTTPError as exc:
        return Check(
            "endpoint",
            False,
            f"{base_url} did not answer ({type(exc).__name__}); check the URL and network",
        )
    if response.status_code in (401, 403):
        return Check(
            "endpoint", False, f"{base_url} refused the API key (HTTP {response.status_code})"
        )
    if response.status_code >= 400:
        return Check("endpoint", False, f"{base_url}/models answered HTTP {response.status_code}")
    return Check("endpoint", True, f"{base_url} answers")


def _database_check(settings: Settings) -> Check:
    from helpline.store import Store

    try:
        store = Store.open(settings.database_url)
    except Exception as exc:  # report any driver error as a failed check
        return Check(
            "database", False, f"{type(exc).__name__}: {exc}. Check HELPLINE_DATABASE_URL."
        )
    try:
        latest = store.conversations.latest_id()
        detail = f"{store.url} (schema up to date; {'has' if latest else 'no'} conversations)"
    finally:
        store.close()
    return Check("database", True, detail)


def _module_check(name: str, module: str, purpose: str, required: bool) -> Check:
    found = importlib.util.find_spec(module) is not None
    detail = purpose if found else f"not installed: {purpose} unavailable (pip install {module})"
    return Check(name, found or not required, detail)


async def run_checks(settings: Settings) -> list[Check]:
    checks = [_backend_check(settings)]
    if (style := _api_style_check(settings)) is not None:
        checks.append(style)
    endpoint = await _endpoint_check(settings)
    if endpoint is not None:
        checks.append(endpoint)
    checks.append(_database_check(settings))
    checks.append(_module_check("receipt OCR", "rapidocr", "offline receipt reading", True))
    checks.append(
        _module_check(
            "local models", "xllamacpp", "running GGUF files with --gguf", bool(settings.gguf)
        )
    )
    return checks


def print_report(checks: list[Check]) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    for check in checks:
        mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
        console.print(f"{mark} {check.name}: {escape(check.detail)}")
