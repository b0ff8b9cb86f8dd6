"""The support desk's numbers for the agents' dashboard: one JSON document, for an agent's key
or the admin key."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from helpline.server.desk_auth import desk_agent
from helpline.server.state import ServerState, limit_client, server_state
from helpline.store import DeskStats, RatingInfo

RECENT_RATINGS = 10


router = APIRouter(
    prefix="/api/stats", tags=["stats"], dependencies=[Depends(limit_client), Depends(desk_agent)]
)
State = Annotated[ServerState, Depends(server_state)]


def start_of(day: date | None) -> datetime | None:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(), UTC) if day is not None else None


@dataclass(frozen=True)
class StatsOut(DeskStats):
    """The desk's numbers, with the latest ratings and their comments."""

    recent_ratings: list[RatingInfo] = field(default_factory=list)


@router.get("", response_model=StatsOut)
async def desk_stats(
    state: State,
    since: Annotated[
        date | None,
        Query(
            description="Only conversations started on or after this day (ISO, e.g. 2026-11-01)."
        ),
    ] = None,
) -> StatsOut:
    """Conversations, resolution by the assistant, handoffs, answer times, CSAT, the most used
    articles and tools, tool errors, tokens and cost; and the latest ratings with comments."""
    store = state.assistant.store
    moment = start_of(since)
    numbers = await store.call(store.stats.compute, moment)
    recent = await store.call(store.ratings.recent, RECENT_RATINGS, moment)
    fields = {f.name: getattr(numbers, f.name) for f in dataclasses.fields(numbers)}
    return StatsOut(**fields, recent_ratings=recent)
