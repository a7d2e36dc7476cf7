"""entries: the text found for an entry waiting for its story decision

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Workers store each entry's text (state "ready") and the story decisions are then taken in one canonical order
    # (publication time, feed, entry), whichever worker found the text; the text is cleared once decided.
    with op.batch_alter_table("entries") as batch_op:
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("text_source", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.drop_column("text_source")
        batch_op.drop_column("text")
