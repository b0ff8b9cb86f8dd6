"""What a conversation's model replies used and cost (an agent's key or the admin key), for
the agents' page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from helpline.server.desk_auth import desk_agent
from helpline.server.errors import ApiError
from helpline.server.state import ServerState, limit_client, server_state

router = APIRouter(
    prefix="/api/conversations",
    tags=["usage"],
    dependencies=[Depends(limit_client), Depends(desk_agent)],
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
