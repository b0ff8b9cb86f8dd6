"""A customer's message as it arrives over HTTP: JSON or multipart, checked before anything is stored.

Shared images end up as lines in the message text — ``[Shared image: image://ID]`` for an
upload (stored in the database), ``[Shared image: URL]`` for a public link, which the receipt
tool fetches safely later. The server never reads a path on its own disk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated

import anyio.to_thread
from fastapi import Request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpline.images import ImageError, normalize_image
from helpline.server.errors import NESTED_TOO_DEEPLY, ApiError, error_response
from helpline.validation import describe_errors

MAX_TEXT_CHARS = 4000
MAX_URL_CHARS = 2048
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
"""An upload plus its text and multipart framing."""
_DRAIN_LIMIT = 64 * 1024 * 1024
"""Read (and drop) up to this much of an oversized body, so the client sees the 413."""

_FORM = "multipart/form-data with a 'text' field and an optional 'image' file"
_TOO_LARGE = (
    f"The request is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB. "
    "Send a smaller photo (a phone photo of a receipt is usually 1-4 MB)."
)

INVALID_CHARACTERS = (
    "contains invalid characters (a NUL, or a lone surrogate such as \\ud800, which are not "
    "text and cannot be stored); remove them or type the text again"
)
_INVALID_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
"""What PostgreSQL (NUL) and UTF-8 (lone surrogates) cannot hold."""
_CONTROLS = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def _valid_characters(value: object) -> object:
    """Refuse text no database can store; sending it again can never help, so it is a 4xx."""
    if isinstance(value, str) and _INVALID_CHARACTERS.search(value):
        raise PydanticCustomError("invalid_characters", INVALID_CHARACTERS)
    return value


NonBlankText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), BeforeValidator(_valid_characters)
]
"""A client's words in a JSON body: stripped, not blank, no lone surrogates."""


class MessageIn(BaseModel):
    """The JSON form of a customer's message."""

    model_config = ConfigDict(extra="ignore", strict=True)

    text: str = Field(
        default="", description=f"The customer's words, up to {MAX_TEXT_CHARS} characters."
    )
    image_url: str | None = Field(
        default=None, description="A public http(s) link to an image (e.g. a receipt photo)."
    )


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes
    mime: str


@dataclass(frozen=True)
class Incoming:
    """A checked message: text (maybe empty when an image is shared), an upload or a link."""

    text: str
    upload: Upload | None = None
    image_url: str | None = None

    def content(self, image_reference: str | None) -> str:
        """The text the engine stores: the customer's words, then one line per shared image."""
        lines = [self.text] if self.text else []
        for shared in (image_reference, self.image_url):
            if shared:
                lines.append(f"[Shared image: {shared}]")
        return "\n\n".join(lines)


async def read_message(request: Request) -> Incoming:
    """Parse and check the body; every problem is a 4xx saying what to fix."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return _from_json(await request.body())
    if content_type == "multipart/form-data":
        return await _from_form(request)
    raise ApiError(415, f'Send the message as JSON ({{"text": "..."}}) or as {_FORM}.')


def _from_json(body: bytes) -> Incoming:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f'The body is not valid JSON ({exc}). Send {{"text": "..."}}.') from exc
    except RecursionError as exc:
        raise ApiError(400, NESTED_TOO_DEEPLY) from exc
    try:
        message = MessageIn.model_validate(data)
    except ValidationError as exc:
        problems = describe_errors(exc.errors(), whole="body")
        raise ApiError(
            422,
            f'Invalid message ({problems}). Send {{"text": "...", "image_url": "https://..."}}.',
        ) from exc
    return _checked(message.text, None, message.image_url)


async def _from_form(request: Request) -> Incoming:
    try:
        form = await request.form(max_files=1, max_fields=10)
    except HTTPException as exc:  # Starlette could not parse the form
        raise ApiError(400, f"{exc.detail} Send the message as {_FORM}.") from exc
    text = form.get("text", "")
    image = form.get("image")
    image_url = form.get("image_url")
    if not isinstance(text, str) or not (image_url is None or isinstance(image_url, str)):
        raise ApiError(422, "'text' and 'image_url' must be plain form fields, not files.")
    if image is not None and not isinstance(image, UploadFile):
        raise ApiError(422, "'image' must be a file upload (an image such as a receipt photo).")
    upload = await _read_upload(image) if image is not None else None
    return _checked(text, upload, image_url or None)


async def _read_upload(image: UploadFile) -> Upload:
    data = await image.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, _TOO_LARGE)
    if not data:
        raise ApiError(422, "The uploaded image is empty. Choose the photo again.")
    try:
        normalized = await anyio.to_thread.run_sync(normalize_image, data)
    except ImageError as exc:
        raise ApiError(415, str(exc)) from exc
    name = _CONTROLS.sub(" ", image.filename or "image")[:200]  # a label, not the customer's words
    return Upload(name, normalized.data, normalized.mime)


def _checked(text: str, upload: Upload | None, image_url: str | None) -> Incoming:
    for value, what in ((text, "The text"), (image_url or "", "image_url")):
        if _INVALID_CHARACTERS.search(value):
            raise ApiError(422, f"{what} {INVALID_CHARACTERS}, then send it.")
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(
            422,
            f"The message is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}. "
            "Shorten it or send it in parts.",
        )
    if image_url is not None:
        image_url = image_url.strip()
        if (
            not image_url.lower().startswith(("http://", "https://"))
            or len(image_url) > MAX_URL_CHARS
            or any(c.isspace() for c in image_url)
        ):
            raise ApiError(
                422,
                f"image_url must be a public http(s) link of at most {MAX_URL_CHARS} characters. "
                "Upload the photo instead if you have no link.",
            )
    if not text and upload is None and not image_url:
        raise ApiError(
            422, "The message is empty. Write something (or attach an image) and send it again."
        )
    return Incoming(text, upload, image_url)


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413, early."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _drain(receive, 0)
            await error_response(413, _TOO_LARGE)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await _drain(receive, received)
            await error_response(413, _TOO_LARGE)(scope, receive, send)


async def _drain(receive: Receive, received: int) -> None:
    """Read the rest of the body (up to a cap) so the client is not cut off mid-upload."""
    while received < _DRAIN_LIMIT:
        message = await receive()
        received += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            return
