"""feeds: a feed's own poll interval and article fetching, where its current interval came from, WebSub

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Set by the user (`feeds edit`, [[feeds]], OPML); NULL: the adaptive schedule and the [fetch] default.
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(sa.Column("poll_interval_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("fetch_articles", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("interval_source", sa.String(length=16), nullable=True))
        # WebSub: the hub the feed names, the topic it is known by there, and this subscription's state
        batch_op.add_column(sa.Column("hub_url", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("websub_topic", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("websub_secret", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("websub_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("websub_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("websub_lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        for column in (
            "websub_lease_until",
            "websub_requested_at",
            "websub_state",
            "websub_secret",
            "websub_topic",
            "hub_url",
        ):
            batch_op.drop_column(column)
        batch_op.drop_column("interval_source")
        batch_op.drop_column("fetch_articles")
        batch_op.drop_column("poll_interval_seconds")
