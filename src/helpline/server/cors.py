"""Which other sites' pages may call the API from a browser (the embedded widget): exactly
the origins in ``HELPLINE_ALLOWED_ORIGINS``, none by default."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from helpline.config import ConfigError, Settings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def checked_origins(settings: Settings) -> list[str]:
    """The allowed origins as browsers send them (``scheme://host[:port]``, lower case, no
    default port); a ``ConfigError`` names a bad one."""
    return [_as_browsers_send(origin) for origin in settings.origins()]


def _as_browsers_send(origin: str) -> str:
    parts = urlsplit(origin)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
        or port == -1
        or "*" in origin
    ):
        raise ConfigError(
            f"HELPLINE_ALLOWED_ORIGINS has {origin!r}; list each site as scheme://host[:port], "
            "e.g. https://shop.example.com, separated by commas (no paths, no wildcards)."
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown_port = "" if port in (None, _DEFAULT_PORTS[parts.scheme]) else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


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
