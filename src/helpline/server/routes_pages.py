"""The web pages (customer chat at ``/``, agents at ``/agents``) and the health check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import text

from helpline.server.state import ServerState, server_state

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
