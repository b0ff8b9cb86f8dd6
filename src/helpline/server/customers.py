"""Signed-in customers over HTTP: their token as a credential, and their own conversations.

A customer token (a JWT the business's backend signs) opens exactly the conversations that
belong to its ``sub``; a refused token is a 401 saying what is wrong, never an anonymous visit.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from helpline.config import Settings
from helpline.identity import IdentityRefused, IdentityUnavailable, IdentityVerifier
from helpline.server.auth import Caller, bearer
from helpline.server.errors import ApiError
from helpline.server.state import ServerState, limit_client, limiting_failed_auth, server_state
from helpline.store import ConversationInfo, VerifiedCustomer

NOT_YOURS = (
    "This conversation does not belong to the signed-in customer. Open one of your own "
    "conversations (GET /api/customers/me/conversations) or start a new one."
)


def looks_like_customer_token(credential: str) -> bool:
    """A JWT has three dot-separated parts; conversation tokens and keys have no dots."""
    return credential.count(".") == 2


@functools.lru_cache(maxsize=8)
def _verifier(secret: str | None, jwks_url: str | None) -> IdentityVerifier:
    """One verifier per configuration, so the key set is fetched once and cached."""
    return IdentityVerifier(secret, jwks_url)


def verifier_for(settings: Settings) -> IdentityVerifier:
    """The customer-token verifier for ``settings``; a ``ConfigError`` names a setting that
    cannot be used (called when the server starts, so it stops there)."""
    return _verifier(settings.identity_secret, settings.identity_jwks_url)


async def verify_customer(state: ServerState, token: str) -> VerifiedCustomer:
    """The customer ``token`` proves; 401 (refused) or 503 (cannot check now) otherwise."""
    verifier = verifier_for(state.settings)
    try:
        if verifier.needs_network(token):
            return await anyio.to_thread.run_sync(verifier.verify, token)
        return verifier.verify(token)
    except IdentityRefused as refused:
        raise ApiError(401, refused.message, {"WWW-Authenticate": "Bearer"}) from refused
    except IdentityUnavailable as unavailable:
        raise ApiError(503, unavailable.message, {"Retry-After": "30"}) from unavailable


def check_customer_access(
    customer: VerifiedCustomer, conversation: ConversationInfo | None
) -> Caller:
    """Let a signed-in customer into their own conversation; the same 403 for anyone else's
    and for an unknown id, so ids cannot be probed."""
    if conversation is None or conversation.customer_id != customer.id:
        raise ApiError(403, NOT_YOURS)
    return Caller(admin=False)


router = APIRouter(
    prefix="/api/customers", tags=["customers"], dependencies=[Depends(limit_client)]
)


class ConversationSummary(BaseModel):
    id: str
    started: datetime
    updated: datetime
    status: str
    last_message: str | None
    """The latest words in it, shortened; ``None`` before any."""


class MyConversations(BaseModel):
    customer_id: str
    name: str
    conversations: list[ConversationSummary]


@router.get("/me/conversations", response_model=MyConversations)
async def my_conversations(
    request: Request, state: Annotated[ServerState, Depends(server_state)]
) -> MyConversations:
    """The signed-in customer's conversations, most recent first (``Authorization: Bearer``
    with the customer token the business signed)."""
    with limiting_failed_auth(request):
        customer = await verify_customer(state, bearer(request))
    store = state.assistant.store
    found = await store.call(store.customers.conversations, customer.id)
    return MyConversations(
        customer_id=customer.id,
        name=customer.name,
        conversations=[ConversationSummary(**asdict(c)) for c in found],
    )
