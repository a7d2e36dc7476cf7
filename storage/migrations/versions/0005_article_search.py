"""articles: a full-text index over titles and texts (SQLite FTS5, PostgreSQL tsvector GIN)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Kept in step with storage/stories.py, which queries them.
SQLITE_TABLE = "articles_fts"
POSTGRES_INDEX = "ix_articles_search"


def upgrade() -> None:
    # `q=` on the digests, the API and `wiredesk stories --q` searches titles and texts. Words are matched whole and
    # case-insensitively, without stemming or accent folding, so that both databases find the same articles.
    if op.get_bind().dialect.name == "sqlite":
        # An external-content FTS5 table: the index only, the text stays in articles; triggers keep it in step.
        op.execute(
            f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(title, text, content='articles', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            f"CREATE TRIGGER {SQLITE_TABLE}_insert AFTER INSERT ON articles BEGIN "
            f"INSERT INTO {SQLITE_TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END"
        )
        op.execute(
            f"CREATE TRIGGER {SQLITE_TABLE}_delete AFTER DELETE ON articles BEGIN "
            f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, title, text) "
            "VALUES ('delete', old.id, old.title, old.text); END"
        )
        op.execute(
            f"CREATE TRIGGER {SQLITE_TABLE}_update AFTER UPDATE OF title, text ON articles BEGIN "
            f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, title, text) "
            "VALUES ('delete', old.id, old.title, old.text); "
            f"INSERT INTO {SQLITE_TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END"
        )
        op.execute(f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('rebuild')")
    else:
        op.execute(
            f"CREATE INDEX {POSTGRES_INDEX} ON articles USING gin "
            "(to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(text, '')))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {SQLITE_TABLE}_{trigger}")
        op.execute(f"DROP TABLE IF EXISTS {SQLITE_TABLE}")
    else:
        op.execute(f"DROP INDEX IF EXISTS {POSTGRES_INDEX}")
