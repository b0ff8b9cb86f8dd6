"""verified customers and channels

Revision ID: 0010
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("customer_email", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("customer_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("external_thread_id", sa.String(length=200), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_conversations_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            "ix_conversations_channel_thread", ["channel", "external_thread_id"], unique=True
        )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): rebuilding the table in batch mode
    # would drop it, which the other tables' foreign keys to conversations refuse.
    op.drop_index("ix_conversations_channel_thread", table_name="conversations")
    op.drop_index(op.f("ix_conversations_customer_id"), table_name="conversations")
    op.drop_column("conversations", "external_thread_id")
    op.drop_column("conversations", "channel")
    op.drop_column("conversations", "customer_name")
    op.drop_column("conversations", "customer_email")
    op.drop_column("conversations", "customer_id")
