"""feeds: a feed's own poll interval and article fetching, and where its current interval came from

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Set by the user (`feeds edit`, [[feeds]], OPML); NULL: the adaptive schedule and the [fetch] default.
    with op.batch_alter_table('feeds') as batch_op:
        batch_op.add_column(sa.Column('poll_interval_seconds', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('fetch_articles', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('interval_source', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('feeds') as batch_op:
        batch_op.drop_column('interval_source')
        batch_op.drop_column('fetch_articles')
        batch_op.drop_column('poll_interval_seconds')
