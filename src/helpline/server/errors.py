"""One error shape for every API failure: ``{"error": {"message": ...}}`` with a 4xx/5xx status."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpline.validation import describe_errors


class ApiError(Exception):
    """Raise from a route to answer with ``status`` and a message saying what to do."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    """A readable summary of FastAPI's validation errors, e.g. ``status: Field required``."""
    problems = describe_errors(exc.errors(), whole="request", skip=("body", "query", "path"))
    return f"Invalid request: {problems}. Fix the request and send it again."


def install_error_handlers(app: FastAPI) -> None:
    """Route every error FastAPI or Starlette raises into the one shape."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, exc.headers)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, _describe_validation(exc))

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = {
            404: "Not found. Check the address; the API lives under /api (see /docs).",
            405: "That method is not allowed here. See /docs for what this endpoint accepts.",
        }.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, exc.headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
