"""entries and articles: the page an article's text came from (after redirects), and its title

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # An article is attributed to the publisher of the page its text was fetched from (after redirects), not to the
    # domain its feed wrote in the link; NULL: the text came from the feed (or was stored before this column, when
    # the page fetched was the link itself). Plain ADD COLUMN: a table copy on SQLite would drop the search triggers.
    op.add_column("entries", sa.Column("page_url", sa.Text(), nullable=True))
    op.add_column("entries", sa.Column("page_title", sa.Text(), nullable=True))
    op.add_column("articles", sa.Column("page_url", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("articles", "page_url")
    op.drop_column("entries", "page_title")
    op.drop_column("entries", "page_url")
