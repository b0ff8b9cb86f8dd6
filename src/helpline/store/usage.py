"""What model replies read, wrote and cost: a row per reply, totals per conversation and by day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, String, cast, func, insert, select

from helpline.store.tables import TurnUsage, utcnow


@dataclass(frozen=True)
class ReplyUsage:
    """One model reply: its model, tokens (``prompt_tokens`` counts the cached ones too) and
    cost in US dollars (``None``: the model's prices are unknown), and how many history
    messages its request left out, with the note sent in their place."""

    model: str
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    left_out: int = 0
    context_note: str | None = None


@dataclass(frozen=True)
class UsageTotals:
    """Sums over model replies; ``cost_usd`` sums the priced ones (``None`` if none is), and
    ``unpriced_replies`` counts replies of models without a price."""

    replies: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    unpriced_replies: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DailyUsage(UsageTotals):
    """The totals of one model on one day (UTC)."""

    day: date = date.min
    model: str = ""


class UsageLog:
    """Repository for model usage and cost."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, conversation_id: str, replies: Sequence[ReplyUsage]) -> None:
        """Store a turn's model replies (one statement)."""
        if not replies:
            return
        now = utcnow()
        rows = [
            {**asdict(r), "conversation_id": conversation_id, "created_at": now} for r in replies
        ]
        # One multi-row INSERT is atomic on its own: no BEGIN and COMMIT round trips.
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(insert(TurnUsage).values(rows))

    def for_conversation(self, conversation_id: str) -> UsageTotals:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(*_SUMS).where(TurnUsage.conversation_id == conversation_id)
            ).one()
        return _totals(row)

    def latest(self, conversation_id: str) -> ReplyUsage | None:
        """The conversation's most recent model reply, or ``None``."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(*_REPLY_COLUMNS)
                .where(TurnUsage.conversation_id == conversation_id)
                .order_by(TurnUsage.id.desc())
                .limit(1)
            ).one_or_none()
        return ReplyUsage(**row._mapping) if row else None

    def by_day_and_model(self, since: datetime | None = None) -> list[DailyUsage]:
        """Totals per day (UTC) and model, oldest day first, from ``since`` on."""
        day = _utc_day(TurnUsage.created_at, self._engine.dialect.name).label("day")
        query = select(day, TurnUsage.model, *_SUMS).group_by(day, TurnUsage.model)
        if since is not None:
            query = query.where(TurnUsage.created_at >= since)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(day, TurnUsage.model)).all()
        return [
            DailyUsage(
                **asdict(_totals(row)), day=date.fromisoformat(str(row.day)), model=row.model
            )
            for row in rows
        ]


_REPLY_COLUMNS = (
    TurnUsage.model,
    TurnUsage.prompt_tokens,
    TurnUsage.cached_tokens,
    TurnUsage.completion_tokens,
    TurnUsage.reasoning_tokens,
    TurnUsage.cost_usd,
    TurnUsage.left_out,
    TurnUsage.context_note,
)
_SUMS = (
    func.count().label("replies"),
    func.coalesce(func.sum(TurnUsage.prompt_tokens), 0).label("prompt_tokens"),
    func.coalesce(func.sum(TurnUsage.cached_tokens), 0).label("cached_tokens"),
    func.coalesce(func.sum(TurnUsage.completion_tokens), 0).label("completion_tokens"),
    func.coalesce(func.sum(TurnUsage.reasoning_tokens), 0).label("reasoning_tokens"),
    func.sum(TurnUsage.cost_usd).label("cost_usd"),
    (func.count() - func.count(TurnUsage.cost_usd)).label("unpriced_replies"),
)


def _totals(row: Row[Any] | Any) -> UsageTotals:
    cost = row.cost_usd
    return UsageTotals(
        replies=int(row.replies),
        prompt_tokens=int(row.prompt_tokens),
        cached_tokens=int(row.cached_tokens),
        completion_tokens=int(row.completion_tokens),
        reasoning_tokens=int(row.reasoning_tokens),
        cost_usd=None if cost is None else round(float(cost), 10),
        unpriced_replies=int(row.unpriced_replies),
    )


def _utc_day(column: Any, dialect: str) -> ColumnElement[Any]:
    """The UTC date of a timestamp column, as ``YYYY-MM-DD`` text."""
    if dialect == "postgresql":
        return cast(func.date(func.timezone("UTC", column)), String)
    return func.date(column)  # SQLite keeps UTC timestamps as ISO text
