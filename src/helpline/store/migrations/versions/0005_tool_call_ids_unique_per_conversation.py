"""tool call ids unique per conversation

Revision ID: 0005
Revises: 0004

Providers number tool calls per reply (``call_0`` every time), so a call id is unique only
within its conversation: the unique key on ``tickets.tool_call_id`` becomes one on
``(conversation_id, tool_call_id)``.
"""

from alembic import op


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite reflects the old constraint without a name; this convention gives it one to drop.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
_PER_CONVERSATION = "uq_tickets_conversation_id_tool_call_id"


def _call_id_key() -> str:
    """The name the database gave the unique key on ``tool_call_id`` alone (migration 0001)."""
    if op.get_bind().dialect.name == "postgresql":
        return "tickets_tool_call_id_key"
    return "uq_tickets_tool_call_id"


def upgrade() -> None:
    with op.batch_alter_table("tickets", naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint(_call_id_key(), type_="unique")
        batch_op.create_unique_constraint(_PER_CONVERSATION, ["conversation_id", "tool_call_id"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", naming_convention=_NAMES) as batch_op:
        batch_op.drop_constraint(_PER_CONVERSATION, type_="unique")
        batch_op.create_unique_constraint(_call_id_key(), ["tool_call_id"])
