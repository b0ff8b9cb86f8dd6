"""responses api chaining

Nothing to change in the schema: a reply's provider response id (and, with storage off,
its encrypted reasoning) is kept in the stored message's JSON, next to its content.

Revision ID: 0009
Revises: 0008
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
