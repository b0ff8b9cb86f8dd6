"""One error shape for every API failure: ``{"error": {"message": ...}}`` with a 4xx/5xx status."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpline.validation import describe_errors

NESTED_TOO_DEEPLY = (
    'The JSON body is nested too deeply to read. Send a flat JSON object, e.g. {"text": "..."}.'
)
UNREADABLE_BODY = "The body is not valid UTF-8 JSON. Fix it and send it again."


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
        if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not parse a body
            deep = isinstance(exc.__cause__, RecursionError)
            return error_response(400, NESTED_TOO_DEEPLY if deep else UNREADABLE_BODY)
        message = {
            404: "Not found. Check the address; the API lives under /api (see /docs).",
            405: "That method is not allowed here. See /docs for what this endpoint accepts.",
        }.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, exc.headers)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
