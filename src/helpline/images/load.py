"""Load an image from wherever a customer's message points: a ``data:`` URL, a link, a file."""

from __future__ import annotations

import base64
import binascii
import re

import anyio.to_thread

from helpline.images.errors import DEFAULT_MAX_BYTES, ImageError, too_large
from helpline.images.fetch import SNIFFED_CONTENT_TYPES, AddressPolicy, fetch_image
from helpline.images.local import read_local_image
from helpline.images.normalize import (
    SUPPORTED_FORMATS,
    NormalizedImage,
    check_image,
    normalize_image,
)


async def load_image(
    source: str, *, local_files_allowed: bool, policy: AddressPolicy | None = None
) -> NormalizedImage:
    """Load and normalise an image from a ``data:`` URL, an http(s) link or (terminal) a file.

    ``image://ID`` references name stored images; callers resolve those from the store.
    """
    text = source.strip()
    if text.lower().startswith("data:"):
        data = _decode_data_url(text)
    elif re.match(r"[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        if text.lower().startswith("image://"):
            raise ImageError(
                "image:// references name images already stored with a conversation; look them "
                "up in the store instead of loading them."
            )
        data = await fetch_image(text, policy=policy)
    elif not local_files_allowed:
        raise ImageError(
            "Over the web, Helpline reads uploaded images and public links, never a file path on "
            "the server. Upload the photo or share a public link to it."
        )
    else:
        data = await anyio.to_thread.run_sync(read_local_image, text)
    return await anyio.to_thread.run_sync(normalize_image, data)


def _decode_data_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a base64 ``data:image/...`` URL."""
    header, comma, payload = url.partition(",")
    media_type, *parameters = header[len("data:") :].split(";")
    media_type = media_type.strip().lower()
    if not comma or "base64" not in (p.strip().lower() for p in parameters):
        raise ImageError(
            "That data: link is not a base64-encoded image. Upload the photo as a file instead."
        )
    if not media_type.startswith("image/") and media_type not in SNIFFED_CONTENT_TYPES:
        raise ImageError(
            f"That data: link holds {media_type}, not an image. Upload a {SUPPORTED_FORMATS} "
            "photo instead."
        )
    payload = "".join(payload.split())
    if len(payload) * 3 // 4 > max_bytes:
        raise too_large(max_bytes)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(
            "That data: link is damaged (its base64 text does not decode). Upload the photo as a "
            "file instead."
        ) from exc
    check_image(data, "That image")
    return data
