"""Wiring: build an :class:`Assistant` from :class:`Settings` (used by the CLI and the server)."""

from __future__ import annotations

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.context_budget import budget_for
from helpline.pricing import ModelCatalog
from helpline.store import Store
from helpline.support import load_profile, support_tools
from helpline.understanding.first_intent import FirstIntents


def build_assistant(
    settings: Settings, *, local_files_allowed: bool = False, store: Store | None = None
) -> Assistant:
    """The support assistant these settings describe: model, profile's tools and prompt, database."""
    profile = load_profile(settings.profile)
    model = settings.build_model(local_files_allowed=local_files_allowed)
    catalog = ModelCatalog.load(settings.prices_file)
    model_id = getattr(model, "model", None) or model.name
    return Assistant(
        model,
        store or Store.open(settings.database_url),
        support_tools(profile),
        profile.system_prompt,
        vision_model=settings.build_vision_model(),
        local_files_allowed=local_files_allowed,
        budget=budget_for(model, model_id, catalog, settings.context_tokens),
        catalog=catalog,
        model_id=model_id,
        intents=FirstIntents(profile.path),
    )
