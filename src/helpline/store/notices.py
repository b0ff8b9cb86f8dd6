"""Messages the support desk adds to a customer's chat without taking it over from the
assistant, e.g. the outcome of a refund a person approved."""

from __future__ import annotations

from sqlalchemy import Engine, insert, or_, select, update

from helpline.store.conversation_events import NOTICE, record_event
from helpline.store.conversations import AGENT, ConversationGone
from helpline.store.tables import Conversation, StoredMessage, utcnow


class Notices:
    """Adds the desk's messages between turns, never inside one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def tell(self, conversation_id: str, text: str) -> int | None:
        """Store ``text`` as the support team's message; its id, or ``None`` while the
        assistant is answering (its turn's messages must stay together). Raises
        :class:`ConversationGone` if the conversation was deleted."""
        now = utcnow()
        with self._engine.begin() as connection:
            count = connection.execute(
                update(Conversation)
                .where(
                    Conversation.id == conversation_id,
                    or_(Conversation.turn_holder.is_(None), Conversation.turn_expires_at < now),
                )
                .values(message_count=Conversation.message_count + 1, updated_at=now)
                .returning(Conversation.message_count)
            ).scalar_one_or_none()
            if count is None:
                known = select(Conversation.id).where(Conversation.id == conversation_id)
                if connection.execute(known).first() is None:
                    raise ConversationGone(conversation_id)
                return None
            wire = {"role": "assistant", "name": AGENT, "content": text}
            message_id = int(
                connection.execute(
                    insert(StoredMessage)
                    .values(
                        conversation_id=conversation_id,
                        position=count - 1,
                        role="assistant",
                        wire=wire,
                        created_at=now,
                    )
                    .returning(StoredMessage.id)
                ).scalar_one()
            )
            notice = {"message_id": message_id, "text": text}
            record_event(connection, conversation_id, NOTICE, notice)  # for open pages
            return message_id
