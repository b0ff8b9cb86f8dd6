"""Customer ratings (CSAT): a score from 1 to 5 and an optional comment, one per conversation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from helpline.store.conversations import ConversationGone
from helpline.store.tables import Base, Conversation, detached, utcnow

LOWEST_SCORE, HIGHEST_SCORE = 1, 5


class StoredRating(Base):
    """How the customer rated a conversation; rating it again replaces the earlier rating."""

    __tablename__ = "ratings"
    __table_args__ = (
        CheckConstraint(
            f"score BETWEEN {LOWEST_SCORE} AND {HIGHEST_SCORE}", name="ck_ratings_score_1_to_5"
        ),
        UniqueConstraint("conversation_id", name="uq_ratings_conversation_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        String(32),
        ForeignKey("conversations.id", ondelete="CASCADE"),
    )
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True)
class RatingInfo:
    """A rating, detached from the database session."""

    conversation_id: str
    score: int
    comment: str | None
    created_at: datetime


class Ratings:
    """Repository for customers' ratings of their conversations."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def rate(self, conversation_id: str, score: int, comment: str | None = None) -> RatingInfo:
        """Store the customer's rating, replacing any earlier one for the conversation.
        Raises :class:`ConversationGone` if there is no such conversation."""
        if not LOWEST_SCORE <= score <= HIGHEST_SCORE:
            raise ValueError(f"a rating is from {LOWEST_SCORE} to {HIGHEST_SCORE}, not {score}")
        rating = RatingInfo(conversation_id, score, comment or None, utcnow())
        values = dataclasses.asdict(rating)
        if self._engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        statement = insert(StoredRating).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=[StoredRating.conversation_id],
            set_={k: statement.excluded[k] for k in ("score", "comment", "created_at")},
        )
        try:
            with self._engine.begin() as connection:
                connection.execute(statement)
        except IntegrityError:  # the only reference: the conversation, deleted meanwhile
            raise ConversationGone(conversation_id) from None
        return rating

    def get(self, conversation_id: str) -> RatingInfo | None:
        with Session(self._engine) as session:
            row = session.scalar(
                select(StoredRating).where(StoredRating.conversation_id == conversation_id)
            )
            return detached(RatingInfo, row) if row else None

    def recent(self, limit: int = 10, since: datetime | None = None) -> list[RatingInfo]:
        """The latest ratings, newest first (of conversations started ``since``, if given)."""
        query = select(StoredRating).order_by(StoredRating.created_at.desc()).limit(limit)
        if since is not None:
            query = query.join(Conversation).where(Conversation.created_at >= since)
        with Session(self._engine) as session:
            return [detached(RatingInfo, row) for row in session.scalars(query)]
