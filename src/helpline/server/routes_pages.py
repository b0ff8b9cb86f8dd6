"""The web pages (customer chat at ``/``, agents at ``/agents``), what they say about each
tool, the health check and the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from helpline import metrics
from helpline.server.auth import require_admin
from helpline.server.state import ServerState, limit_client, limiting_failed_auth, server_state

STATIC = Path(__file__).parent / "static"

# Pages load nothing from elsewhere; model output can never run script even if rendering failed.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    return FileResponse(STATIC / "chat.html", headers=PAGE_HEADERS)


@router.get("/agents", include_in_schema=False)
async def agents_page() -> FileResponse:
    return FileResponse(STATIC / "agents.html", headers=PAGE_HEADERS)


class ToolLabels(BaseModel):
    name: str
    activity: str
    """Shown while the tool runs, e.g. "Creating a ticket"."""
    done: str
    """Shown once it has run, e.g. "Ticket created"."""


class ToolList(BaseModel):
    tools: list[ToolLabels]


@router.get(
    "/api/tools",
    tags=["conversations"],
    dependencies=[Depends(limit_client)],
    response_model=ToolList,
)
async def tools(state: Annotated[ServerState, Depends(server_state)]) -> ToolList:
    """The assistant's tools and what customers are shown while each runs and after."""
    return ToolList(
        tools=[
            ToolLabels(name=tool.name, activity=tool.activity, done=tool.done)
            for tool in state.assistant.tools
        ]
    )


@router.get("/healthz", tags=["operations"])
async def healthz(state: Annotated[ServerState, Depends(server_state)]) -> JSONResponse:
    """200 when the database answers, 503 (with the reason) when it does not."""
    engine = state.assistant.store.engine

    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await state.assistant.store.call(ping)
    except Exception as exc:
        message = (
            f"The database is not answering ({type(exc).__name__}). "
            "Check HELPLINE_DATABASE_URL and that the database server is running."
        )
        return JSONResponse(
            {"status": "error", "database": "unavailable", "error": {"message": message}},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": engine.url.get_backend_name()})


@router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics_page(
    request: Request, state: Annotated[ServerState, Depends(server_state)]
) -> Response:
    """Turns, time to first token, tools and tokens, for Prometheus (admin key)."""
    with limiting_failed_auth(request):
        require_admin(request, state.settings.admin_key)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
