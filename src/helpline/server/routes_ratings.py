"""Customer ratings: the customer rates their conversation from 1 to 5, with an optional comment."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from helpline.server.errors import ApiError
from helpline.server.routes_conversations import authorise_conversation
from helpline.server.state import ServerState, limit_client, server_state
from helpline.store import ConversationGone
from helpline.store.ratings import HIGHEST_SCORE, LOWEST_SCORE

router = APIRouter(
    prefix="/api/conversations", tags=["conversations"], dependencies=[Depends(limit_client)]
)
State = Annotated[ServerState, Depends(server_state)]
ConversationId = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The conversation's id.")
]

MAX_COMMENT_CHARS = 2000


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: int = Field(
        ge=LOWEST_SCORE, le=HIGHEST_SCORE, strict=True, description="1 (poor) to 5 (great)."
    )
    comment: str | None = Field(
        default=None,
        max_length=MAX_COMMENT_CHARS,
        description="What the customer adds, if anything.",
    )


class RatingOut(BaseModel):
    conversation_id: str
    score: int
    comment: str | None
    created_at: datetime


@router.post("/{conversation_id}/rating", status_code=201, response_model=RatingOut)
async def rate_conversation(
    conversation_id: ConversationId, rating: RatingIn, request: Request, state: State
) -> RatingOut:
    """The customer rates the conversation (its token, or the signed-in customer's); a new
    rating replaces the last one."""
    store = state.assistant.store
    caller, _ = await authorise_conversation(state, request, conversation_id, fresh=True)
    if caller.admin:
        raise ApiError(403, "Only the customer rates a conversation. Use the customer's token.")
    comment = (rating.comment or "").strip() or None
    try:
        stored = await store.call(store.ratings.rate, conversation_id, rating.score, comment)
    except ConversationGone:
        raise ApiError(404, "This conversation was deleted; there is nothing to rate.") from None
    return RatingOut(**dataclasses.asdict(stored))
