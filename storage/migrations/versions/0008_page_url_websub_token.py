"""entries and articles: the page an article's text came from (after redirects), and its title; feeds: the one-time
token of the latest WebSub subscription request

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
    # WebSub: the token in the callback URL of the latest subscription request, and whether the hub verified it; a
    # verification of intent is accepted once, for that request only
    op.add_column("feeds", sa.Column("websub_token", sa.String(length=64), nullable=True))
    op.add_column("feeds", sa.Column("websub_answered", sa.Boolean(), nullable=True))


def downgrade() -> None:
    op.drop_column("feeds", "websub_answered")
    op.drop_column("feeds", "websub_token")
    op.drop_column("articles", "page_url")
    op.drop_column("entries", "page_title")
    op.drop_column("entries", "page_url")
