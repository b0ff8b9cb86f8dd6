"""The FastAPI application, and how ``helpline serve`` runs it."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.server import (
    customers,
    routes_conversations,
    routes_desk,
    routes_live,
    routes_pages,
    routes_ratings,
    routes_stats,
    routes_tickets,
    routes_usage,
    routes_widget,
)
from helpline.server.cors import install_cors
from helpline.server.errors import install_error_handlers
from helpline.server.inputs import BodyLimit
from helpline.server.ratelimit import RateLimits, limits_from
from helpline.server.routes_pages import STATIC
from helpline.server.state import ServerState

_SETTINGS_ENV = "HELPLINE_SERVE_SETTINGS"
"""Settings (with command-line overrides) handed from ``serve`` to its worker processes."""

DESCRIPTION = """\
Customer chat with streamed answers (server-sent events) and the agents' tickets API.

Customers authenticate with the bearer token `POST /api/conversations` returns; agents with
their own keys (`helpline agents add NAME`), operators with `HELPLINE_ADMIN_KEY`. Errors are `{"error": {"message": ...}}`. A client address and a
conversation each have a token bucket (`HELPLINE_RATE_LIMITS`), shared by every worker and
machine through Redis when `HELPLINE_REDIS_URL` is set, per worker process otherwise; over
it, `429` with `Retry-After`. After 10 failed sign-ins (wrong admin key or token) an address
gets `429` on every protected endpoint until its bucket refills (one try per 10 s).
Open pages follow a conversation live at `GET /api/conversations/{id}/events` (agents: every
conversation at `GET /api/events`): server-sent events resumable with `Last-Event-ID`.
"""


def create_app(
    assistant: Assistant, settings: Settings, *, limits: RateLimits | None = None
) -> FastAPI:
    """The HTTP API and web pages over ``assistant``."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await routes_live.start(_app)
        yield
        await routes_live.close(_app)
        await assistant.wait_idle()  # a redeploy lets the turns in progress finish
        await assistant.model.aclose()

    app = FastAPI(
        title="Helpline",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        lifespan=lifespan,
    )
    app.state.helpline = ServerState(assistant, settings, limits or limits_from(settings))
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    install_cors(app, settings)  # outside the body limit, so its refusals carry CORS headers
    customers.verifier_for(settings)  # a customer-token setting that cannot work stops the start
    app.include_router(routes_conversations.router)
    app.include_router(routes_tickets.router)
    app.include_router(routes_desk.router)
    routes_live.install(app, assistant.store, settings)
    app.include_router(routes_ratings.router)
    app.include_router(routes_stats.router)
    app.include_router(routes_usage.router)
    app.include_router(routes_pages.router)
    app.include_router(customers.router)
    app.include_router(routes_widget.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _serve_docs_offline(app)
    return app


def _serve_docs_offline(app: FastAPI) -> None:
    """Swagger UI from the installed package, not from a CDN: the docs work offline too."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Helpline API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from ``serve`` or the env."""
    from helpline.app import build_assistant

    handed = os.environ.get(_SETTINGS_ENV)
    settings = Settings(**json.loads(handed)) if handed else Settings.from_env()
    app = create_app(build_assistant(settings), settings)
    tune_gc_for_serving()
    return app


def tune_gc_for_serving() -> None:
    """Garbage collection for a long-running server with many open streams.

    What start-up built (modules, routes, schemas) lives as long as the process, so it is
    frozen out of the collector's passes; young collections run every 20,000 allocations
    rather than 700, because each one walks every live coroutine of every open stream
    (measured at 500 streams: young collections of ~5 ms, hundreds a second, and full ones
    pausing every stream for 60-140 ms).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


LOOPBACK = "127.0.0.1,::1"
"""Whose ``X-Forwarded-For`` is trusted unless ``--forwarded-allow-ips`` says otherwise."""


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the server until interrupted (``helpline serve``)."""
    import uvicorn

    from helpline.app import build_assistant
    from helpline.store import Store

    common = {
        "host": host,
        "port": port,
        "timeout_graceful_shutdown": 30,
        "forwarded_allow_ips": settings.forwarded_allow_ips or LOOPBACK,
    }
    if workers <= 1:
        app = create_app(build_assistant(settings), settings)
        tune_gc_for_serving()
        uvicorn.run(app, **common)  # type: ignore[arg-type]
        return
    Store.open(settings.database_url).close()  # migrate once, before the workers race to
    os.environ[_SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    with tempfile.TemporaryDirectory(prefix="helpline-metrics-") as shared_metrics:
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", shared_metrics)  # sums all workers
        uvicorn.run(
            "helpline.server.app:create_app_from_env",
            factory=True,
            workers=workers,
            **common,  # type: ignore[arg-type]
        )
