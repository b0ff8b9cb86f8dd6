"""Images customers shared, stored once and referenced from messages as ``image://ID``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from helpline.store.tables import StoredImage

IMAGE_SCHEME = "image://"


@dataclass(frozen=True)
class ImageRecord:
    id: str
    conversation_id: str | None
    mime: str
    data: bytes
    source: str

    @property
    def reference(self) -> str:
        """How messages and tool calls refer to this image."""
        return IMAGE_SCHEME + self.id


class Images:
    """Repository for shared images."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, data: bytes, mime: str, source: str, conversation_id: str | None) -> ImageRecord:
        record = ImageRecord(secrets.token_hex(12), conversation_id, mime, data, source)
        with Session(self._engine) as session, session.begin():
            session.add(
                StoredImage(
                    id=record.id,
                    conversation_id=conversation_id,
                    mime=mime,
                    data=data,
                    source=source,
                )
            )
        return record

    def get(self, reference_or_id: str) -> ImageRecord | None:
        """Look an image up by ``image://ID`` or by its bare id."""
        image_id = reference_or_id.removeprefix(IMAGE_SCHEME)
        with Session(self._engine) as session:
            row = session.get(StoredImage, image_id)
            if row is None:
                return None
            return ImageRecord(row.id, row.conversation_id, row.mime, row.data, row.source)
