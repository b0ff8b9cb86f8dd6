"""Image files on the customer's own machine, named in the terminal (never over the web)."""

from __future__ import annotations

import os
from pathlib import Path

from helpline.images.errors import DEFAULT_MAX_BYTES, ImageError, too_large
from helpline.images.normalize import check_image


def read_local_image(path: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read an image file the customer named on their own machine (terminal only).

    Accepts the path as people type or paste it: quoted, with ``~``, or with backslash-escaped
    spaces as terminals produce when a file is dragged in.
    """
    file = _local_path(path)
    if not _exists(file):
        raise ImageError(
            f"There is no file at {file}. Check the path (put it in quotes if it contains spaces) "
            "and try again."
        )
    if file.is_dir():
        raise ImageError(f"{file} is a folder, not an image. Name the image file inside it.")
    if not file.is_file():
        raise ImageError(f"{file} is not a regular file. Name a photo file (JPEG or PNG) instead.")
    try:
        with file.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except PermissionError as exc:
        raise ImageError(
            f"Helpline is not allowed to read {file}. Check the file's permissions, or copy it "
            "somewhere you can read it."
        ) from exc
    except OSError as exc:
        raise ImageError(
            f"Couldn't read {file} ({exc.strerror}). Check the file, or copy it somewhere else "
            "and try again."
        ) from exc
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    check_image(data, f"The file {file.name}")
    return data


def is_local_file(text: str) -> bool:
    """Whether `text`, read as a typed path, names an existing regular file."""
    try:
        return _local_path(text).is_file()
    except (OSError, ValueError):
        return False


def _local_path(text: str) -> Path:
    """The file a typed or pasted path means, relative paths against the current folder."""
    cleaned = text.strip()
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1]
    file = Path(os.path.expanduser(cleaned))
    if "\\ " in cleaned and not _exists(file):
        file = Path(os.path.expanduser(cleaned.replace("\\ ", " ")))
    return file


def _exists(file: Path) -> bool:
    """Whether `file` exists; names too long or holding NUL simply do not."""
    try:
        return file.exists()
    except (OSError, ValueError):
        return False
