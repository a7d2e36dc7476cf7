"""The Alembic migrations and the models agree, and a database made by an older release is upgraded on start."""

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.db import Database, _alembic_config, open_database
from storage.models import Base

# The full-text index of migration 0005 lives outside the models (an FTS5 table on SQLite, an expression index on
# PostgreSQL): storage/stories.py queries it in SQL of its own.
SEARCH_INDEX = ("articles_fts", "ix_articles_search")


def _not_search_index(name, type_, parent_names) -> bool:
    return not (name or "").startswith(SEARCH_INDEX)


def test_migrations_build_exactly_the_models(db_url):
    db = open_database(db_url)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _not_search_index})
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()


def test_a_database_at_the_first_release_is_upgraded_and_keeps_its_rows(db_url, wiredesk):
    old = Database(db_url)
    command.upgrade(_alembic_config(old.engine), "0001")
    with old.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into feeds (url, status, error_count, created_at) "
                "values ('https://example.com/feed.xml', 'active', 0, '2026-01-01 00:00:00')"
            )
        )
    old.dispose()
    code, out, err = wiredesk("feeds", "list")
    assert code == 0, err
    assert "https://example.com/feed.xml" in out
    db = Database(db_url)
    with db.engine.connect() as conn:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config(db.engine)).get_current_head()
        assert head >= "0006" and conn.execute(sa.text("select version_num from alembic_version")).scalar() == head
        assert "ix_entries_feed_published" in {i["name"] for i in sa.inspect(conn).get_indexes("entries")}
    db.dispose()
