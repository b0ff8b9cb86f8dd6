"""Which other sites' pages may call the API from a browser (the embedded widget): exactly
the origins in ``HELPLINE_ALLOWED_ORIGINS``, none by default."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from helpline.config import ConfigError, Settings


def checked_origins(settings: Settings) -> list[str]:
    """The allowed origins, each ``scheme://host[:port]``; a ``ConfigError`` names a bad one."""
    origins = settings.origins()
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or "*" in origin:
            raise ConfigError(
                f"HELPLINE_ALLOWED_ORIGINS has {origin!r}; list each site as scheme://host[:port], "
                "e.g. https://shop.example.com, separated by commas (no paths, no wildcards)."
            )
    return origins


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Answer browsers' cross-origin checks for the allowed sites; others get no CORS headers."""
    origins = checked_origins(settings)
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=["Retry-After"],
        allow_credentials=False,  # customers authenticate with bearer tokens, never cookies
        max_age=600,
    )
