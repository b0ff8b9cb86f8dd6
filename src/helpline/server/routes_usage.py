"""What a conversation's model replies used and cost (admin key only), for the agents' page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from helpline.server.auth import require_admin
from helpline.server.errors import ApiError
from helpline.server.state import (
    ServerState,
    limit_client,
    limiting_failed_auth,
    server_state,
    state_of,
)


async def _admin(request: Request) -> None:
    with limiting_failed_auth(request):
        require_admin(request, state_of(request).settings.admin_key)


router = APIRouter(
    prefix="/api/conversations",
    tags=["usage"],
    dependencies=[Depends(limit_client), Depends(_admin)],
)
State = Annotated[ServerState, Depends(server_state)]
ConversationId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The conversation's id.")
]


@router.get("/{conversation_id}/usage")
async def conversation_usage(conversation_id: ConversationId, state: State) -> dict[str, Any]:
    """The conversation's model replies: prompt tokens (``cached_tokens`` of them served from
    the provider's cache), completion and reasoning tokens, and ``cost_usd`` in US dollars
    (``null`` when no reply's model has a price; ``unpriced_replies`` counts those)."""
    store = state.assistant.store
    if await store.call(store.conversations.get, conversation_id) is None:
        raise ApiError(404, f"There is no conversation {conversation_id!r}. Check the id.")
    totals = await store.call(store.usage.for_conversation, conversation_id)
    return {"conversation_id": conversation_id, **totals.as_dict()}
