"""story_changes: the merges and moves of the settling pass; story_aliases: the ids of absorbed stories

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # New tables only: nothing stored before is rewritten (a story that was never settled has no change and no alias).
    op.create_table(
        "story_changes",
        sa.Column("seq", BIG_ID, autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("from_story", sa.String(length=64), nullable=False),
        sa.Column("to_story", sa.String(length=64), nullable=False),
        sa.Column("article_ids", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_story_changes_from_story", "story_changes", ["from_story"], unique=False)
    op.create_index("ix_story_changes_to_story", "story_changes", ["to_story"], unique=False)
    op.create_table(
        "story_aliases",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("uuid", sa.String(length=64), nullable=False),
        sa.Column("survivor_id", sa.String(length=64), nullable=False),
        sa.Column("seq", BIG_ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["survivor_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("ix_story_aliases_survivor_id", "story_aliases", ["survivor_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_story_aliases_survivor_id", table_name="story_aliases")
    op.drop_table("story_aliases")
    op.drop_index("ix_story_changes_to_story", table_name="story_changes")
    op.drop_index("ix_story_changes_from_story", table_name="story_changes")
    op.drop_table("story_changes")
