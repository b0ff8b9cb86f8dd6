"""Who is at the desk: a named agent (their own key) or an operator (the admin key).

Agents' keys start with ``hlagent_``; only their SHA-256 is stored, so the key is looked up
by its hash and the match compared in constant time. The admin key stays for operators; what
they do is recorded as done by ``operator``.
"""

from __future__ import annotations

from fastapi import Request

from helpline.desk import Desk, DeskError
from helpline.server.auth import Caller, bearer, require_admin
from helpline.server.errors import ApiError
from helpline.server.state import ServerState, limiting_failed_auth, state_of
from helpline.store import ConversationInfo
from helpline.store.agents import OPERATOR, is_agent_key

UNKNOWN_AGENT_KEY = (
    "That agent key is not known: it may have been mistyped. Sign in with the key "
    "`helpline agents add NAME` printed, or ask an operator for a new one."
)


async def agent_named_by(state: ServerState, credential: str) -> str:
    """The name of the agent whose key ``credential`` is; 403 if it is nobody's."""
    store = state.assistant.store
    agent = await store.call(store.agents.by_key, credential)
    if agent is None:
        raise ApiError(403, UNKNOWN_AGENT_KEY)
    return agent.name


async def desk_agent(request: Request) -> str:
    """Dependency: who is acting, by name (``operator`` for the admin key); 401/403 (and 503
    with neither agents' keys nor an admin key in use) otherwise."""
    state = state_of(request)
    with limiting_failed_auth(request):
        credential = bearer(request)
        if is_agent_key(credential):
            return await agent_named_by(state, credential)
        require_admin(request, state.settings.admin_key)
        return OPERATOR


async def agent_conversation_access(
    state: ServerState, credential: str, conversation: ConversationInfo | None
) -> Caller:
    """An agent's key opens any conversation, as the admin key does."""
    await agent_named_by(state, credential)
    if conversation is None:
        raise ApiError(404, "There is no conversation with that id. Check the id.")
    return Caller(admin=True)


def desk_of(state: ServerState) -> Desk:
    return Desk(state.assistant.store)


def refused(error: DeskError) -> ApiError:
    """The desk's refusal as the API's error."""
    return ApiError(error.status, str(error))
