"""Wiring: build an :class:`Assistant` from :class:`Settings` (used by the CLI and the server)."""

from __future__ import annotations

from helpline.assistant import Assistant
from helpline.config import Settings
from helpline.store import Store
from helpline.support import support_tools

SEED_SYSTEM_PROMPT = """\
You are a customer support assistant for a food delivery app. Be clear, friendly and \
professional. When a customer reports a problem, ask for their name and a short description \
of the issue, then create a support ticket with create_customer_ticket and tell them its number. \
Stay on topic: help with orders, deliveries, payments, accounts and the app."""


def build_assistant(
    settings: Settings, *, local_files_allowed: bool = False, store: Store | None = None
) -> Assistant:
    """The support assistant these settings describe: model, tools, prompt and database."""
    return Assistant(
        settings.build_model(),
        store or Store.open(settings.database_url),
        support_tools(),
        SEED_SYSTEM_PROMPT,
        vision_model=settings.build_vision_model(),
        local_files_allowed=local_files_allowed,
    )
