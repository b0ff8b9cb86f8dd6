"""Wiring: build an :class:`Assistant` from :class:`Settings` (used by the CLI and the server)."""

from __future__ import annotations

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.store import Store
from helpline.support import load_profile, support_tools


def build_assistant(
    settings: Settings, *, local_files_allowed: bool = False, store: Store | None = None
) -> Assistant:
    """The support assistant these settings describe: model, profile's tools and prompt, database."""
    profile = load_profile(settings.profile)
    return Assistant(
        settings.build_model(local_files_allowed=local_files_allowed),
        store or Store.open(settings.database_url),
        support_tools(profile),
        profile.system_prompt,
        vision_model=settings.build_vision_model(),
        local_files_allowed=local_files_allowed,
    )
