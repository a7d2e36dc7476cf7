"""entries: index on (feed_id, published) for the schedule's newest-entries query

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each poll of an unchanged feed reads its newest entries' dates (the adaptive interval): with this index that is
    # a short range scan per feed however many entries it has kept over the months.
    op.create_index("ix_entries_feed_published", "entries", ["feed_id", "published"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_entries_feed_published", table_name="entries")
