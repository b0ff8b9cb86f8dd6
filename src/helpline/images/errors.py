"""The error every image loader raises, and the size cap they all enforce."""

from __future__ import annotations

DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class ImageError(Exception):
    """An image could not be loaded; the message says why and what the customer can do."""


def too_large(max_bytes: int) -> ImageError:
    """The refusal for an image over `max_bytes`, however it arrived."""
    return ImageError(
        f"That image is larger than {max_bytes / (1024 * 1024):g} MB, the most Helpline accepts. "
        "Share a smaller photo (a phone screenshot of the receipt works well)."
    )
