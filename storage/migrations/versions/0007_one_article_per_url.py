"""articles: one per canonical URL (url_key, unique); article_feeds: the other feeds an article came through

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 2000  # articles read per round of the backfill: memory stays flat whatever the database holds


def _key(url: str) -> str:
    # kept in step with storage.articles.url_key (a migration does not import code that may change after it)
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def upgrade() -> None:
    # A page that two feeds list (two section feeds of one paper) arrives as one entry in each; from now on the
    # second entry is recorded on the article stored for the first (article_feeds) instead of becoming an article of
    # its own. Plain ADD COLUMN and CREATE INDEX, no table copy: on SQLite a copy of articles would drop the
    # triggers of the search index (0005).
    op.add_column("articles", sa.Column("url_key", sa.String(length=64), nullable=True))
    # Backfill: the first article stored for each URL gets its key. Pages stored twice before this release are left
    # as they are (their later copies keep a NULL key): merging them would delete articles that memberships, copies,
    # the engine's stored order and shared Redis indexes refer to, and lose the second copy's own title and time.
    # The digest, the page and the API still show such a pair as one article.
    bind = op.get_bind()
    articles = sa.table(
        "articles", sa.column("id", sa.Integer), sa.column("url", sa.Text), sa.column("url_key", sa.String)
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(articles.c.id, articles.c.url)
            .where(articles.c.id > last, articles.c.url.is_not(None))
            .order_by(articles.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        first: dict[str, int] = {}
        for article_id, url in rows:
            if url:
                first.setdefault(_key(url), article_id)
        taken = set(bind.execute(sa.select(articles.c.url_key).where(articles.c.url_key.in_(list(first)))).scalars())
        todo = [{"i": i, "k": k} for k, i in first.items() if k not in taken]
        if todo:
            bind.execute(
                articles.update().where(articles.c.id == sa.bindparam("i")).values(url_key=sa.bindparam("k")), todo
            )
    op.create_index("ix_articles_url_key", "articles", ["url_key"], unique=True)

    op.create_table(
        "article_feeds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("article_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_id"),
    )
    op.create_index("ix_article_feeds_article_id", "article_feeds", ["article_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_article_feeds_article_id", table_name="article_feeds")
    op.drop_table("article_feeds")
    op.drop_index("ix_articles_url_key", table_name="articles")
    # ALTER TABLE, not a batch copy of the table (which would drop the search index's triggers on SQLite)
    op.execute("ALTER TABLE articles DROP COLUMN url_key")
