"""Who is calling: a conversation's customer (bearer token) or a support agent (admin key).

Customer tokens are random secrets; only their SHA-256 is stored, and every comparison
is constant-time. A wrong token gets the same 403 whether or not the conversation exists,
so ids cannot be probed; only an agent can learn that an id is unknown (404).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from fastapi import Request

from helpline.server.errors import ApiError
from helpline.store import ConversationInfo

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")

ADMIN_DISABLED = (
    "The agents' API is turned off because no admin key is set. "
    "Set HELPLINE_ADMIN_KEY on the server and restart it."
)
NO_CREDENTIALS = (
    "Missing credentials. Send 'Authorization: Bearer <token>' with the token "
    "POST /api/conversations returned (or the admin key, for agents)."
)
WRONG_TOKEN = (
    "This token does not open this conversation. "
    "Use the token returned when the conversation was created, or start a new conversation."
)


def new_token() -> tuple[str, str]:
    """A fresh customer token and the hash to store for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(request: Request) -> str:
    """The bearer credential, or a 401 saying how to send one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise ApiError(401, NO_CREDENTIALS, {"WWW-Authenticate": "Bearer"})
    return value


def is_admin(credential: str, admin_key: str | None) -> bool:
    return bool(admin_key) and hmac.compare_digest(credential.encode(), (admin_key or "").encode())


def require_admin(request: Request, admin_key: str | None) -> None:
    """Let agents through; 503 when no admin key is configured, 401/403 otherwise."""
    if not admin_key:
        raise ApiError(503, ADMIN_DISABLED)
    if not is_admin(bearer(request), admin_key):
        raise ApiError(
            403, "That is not the admin key. Use the value of HELPLINE_ADMIN_KEY on the server."
        )


@dataclass(frozen=True)
class Caller:
    admin: bool


def check_conversation_access(
    credential: str, conversation: ConversationInfo | None, admin_key: str | None
) -> Caller:
    """Authorise ``credential`` for ``conversation`` (``None`` when the id is unknown)."""
    if is_admin(credential, admin_key):
        if conversation is None:
            raise ApiError(404, "There is no conversation with that id. Check the id.")
        return Caller(admin=True)
    if not _TOKEN_SHAPE.match(credential):
        raise ApiError(
            401,
            "That is not a conversation token. " + NO_CREDENTIALS,
            {"WWW-Authenticate": "Bearer"},
        )
    stored = conversation.token_hash if conversation else None
    # Compare against a dummy hash when there is nothing to compare, so timing is the same.
    if not hmac.compare_digest(hash_token(credential), stored or "0" * 64) or stored is None:
        raise ApiError(403, WRONG_TOKEN)
    return Caller(admin=False)
