"""The chat widget for the business's own website: the script (``/widget.js``), its defaults
from the profile, and "talk to a person" before the assistant starts.

``/widget.js`` is one classic script built from the page's ES modules (``widget.js`` and what
it imports, each in its own function scope) with the widget's stylesheet inlined: one script
tag, no inline script, no eval, so it runs under a host page's strict CSP.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from helpline.server.errors import ApiError
from helpline.server.routes_conversations import ConversationId, authorise_conversation
from helpline.server.routes_pages import STATIC
from helpline.server.state import ServerState, limit_client, server_state
from helpline.store.tables import utcnow
from helpline.support.handoff import hand_over
from helpline.support.profile import Profile, load_profile
from helpline.support.tickets import Name

State = Annotated[ServerState, Depends(server_state)]

_IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./([\w-]+)\.js";\s*$', re.MULTILINE)
_EXPORT = re.compile(
    r"^export\s+(?:async\s+)?(?:function\*?|class|const|let)\s+(\w+)", re.MULTILINE
)

PERSON_FIRST_REQUEST = "person-first"
"""The handoff a customer asks for before the assistant starts: filed once per conversation."""


def _module(name: str, source_dir: Path, bundled: dict[str, str]) -> None:
    """Add module ``name`` to ``bundled`` after the modules it imports, as a function scope."""
    if name in bundled:
        return
    source = (source_dir / f"{name}.js").read_text(encoding="utf-8")
    bindings = []
    for names, dependency in _IMPORT.findall(source):
        _module(dependency, source_dir, bundled)
        bindings.append(f"const {{{names.strip()}}} = {_scope(dependency)};")
    body = _IMPORT.sub("", source)
    exported = _EXPORT.findall(body)
    body = re.sub(r"^export\s+", "", body, flags=re.MULTILINE)
    if re.search(r"^\s*(import|export)\b", body, re.MULTILINE):
        raise RuntimeError(f"{name}.js has an import or export the widget bundle cannot read")
    bundled[name] = (
        f"const {_scope(name)} = (() => {{\n{chr(10).join(bindings)}\n{body}\n"
        f"return {{ {', '.join(exported)} }};\n}})();\n"
    )


def _scope(name: str) -> str:
    return "module_" + name.replace("-", "_")


@functools.lru_cache(maxsize=1)
def widget_bundle(source_dir: Path = STATIC) -> tuple[bytes, str]:
    """The widget script and its ETag, built once per process."""
    modules: dict[str, str] = {}
    _module("widget", source_dir, modules)
    css = (source_dir / "widget.css").read_text(encoding="utf-8")
    script = (
        "// Helpline chat widget: https://HELPLINE_HOST/widget.js, one script tag.\n"
        '(() => {\n"use strict";\n'
        f"const WIDGET_CSS = {json.dumps(css)};\n" + "".join(modules.values()) + "})();\n"
    )
    body = script.encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


router = APIRouter()


@router.get("/widget.js", include_in_schema=False)
async def widget_script(request: Request) -> Response:
    body, etag = widget_bundle()
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


@functools.lru_cache(maxsize=4)
def _profile(path: str | None) -> Profile:
    return load_profile(path)


def profile_of(state: ServerState) -> Profile:
    """The profile this server answers for (read once)."""
    return _profile(state.settings.profile)


class WidgetConfig(BaseModel):
    company: str
    color: str
    position: str
    greeting: str | None
    strings: dict[str, str]
    """Words the widget shows, by name, in the site's language (the page's own win)."""
    offer_person_first: bool
    """Offer "talk to a person" before the assistant starts."""
    open_now: bool | None
    """Whether people are answering right now; ``None`` when the profile has no hours."""
    hours: str | None
    """When people answer, in words."""
    signed_in_customers: bool
    """Whether this server accepts customer tokens."""


@router.get(
    "/api/widget/config",
    tags=["widget"],
    dependencies=[Depends(limit_client)],
    response_model=WidgetConfig,
)
async def widget_config(state: State) -> WidgetConfig:
    """The widget's defaults from the profile: colour, position, greeting, words, hours."""
    profile = profile_of(state)
    look, settings = profile.widget, profile.settings
    return WidgetConfig(
        company=profile.name,
        color=look.color,
        position=look.position,
        greeting=look.greeting,
        strings=look.strings,
        offer_person_first=settings.offer_person_first,
        open_now=settings.hours.is_open(utcnow()) if settings.hours else None,
        hours=settings.support_hours,
        signed_in_customers=bool(
            state.settings.identity_secret or state.settings.identity_jwks_url
        ),
    )


class PersonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = Field(default=None, description="The customer's name.")


class HandedOver(BaseModel):
    status: str
    ticket_id: int
    message: str
    """What the customer is told: a person will answer here, and when."""


@router.post(
    "/api/conversations/{conversation_id}/handoff",
    tags=["conversations"],
    dependencies=[Depends(limit_client)],
    response_model=HandedOver,
)
async def ask_for_a_person(
    conversation_id: ConversationId,
    request: Request,
    state: State,
    body: PersonRequest | None = None,
) -> HandedOver:
    """The customer asks for a person instead of the assistant (when the profile offers it):
    the support team gets the conversation, and the customer is told when they will answer."""
    caller, _ = await authorise_conversation(state, request, conversation_id, fresh=True)
    if caller.admin:
        raise ApiError(403, "Only the customer can ask for a person. Use the customer's token.")
    profile = profile_of(state)
    if not profile.settings.offer_person_first:
        raise ApiError(
            403,
            f"{profile.name} answers with the assistant first. Write your question; "
            "the assistant passes it to a person when you ask it to.",
        )
    store = state.assistant.store

    def handoff() -> dict[str, Any]:
        customer = store.customers.of_conversation(conversation_id)
        name = (body.name if body else None) or (customer.name if customer else None)
        reason = "The customer asked for a person before the assistant started."
        handed = hand_over(store, profile, conversation_id, PERSON_FIRST_REQUEST, reason, name)
        if handed.filed:  # what the customer was told stays in the conversation, once
            note = {"role": "assistant", "content": handed.message}
            store.conversations.append(conversation_id, [note])
        return handed.result()

    return HandedOver(**await store.call(handoff))
