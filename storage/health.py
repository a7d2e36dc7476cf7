"""Whether the service can read its database right now, asked with a fresh connection each time."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from daemon.errors import first_line
from storage.db import Database


class HealthProbe:
    """Answers "can the service read its database right now?" with a fresh connection each time.

    A pooled connection would keep working on an SQLite file that was deleted or moved away, and the check must never
    create an empty database where the real one was; so an SQLite file must exist, and the probe reads a table.
    """

    def __init__(self, db: Database):
        self.db = db
        self.sqlite_file: Path | None = None
        connect_args = {}
        if db.dialect == "sqlite":
            name = db.url.database
            if name and name != ":memory:" and not name.startswith("file:"):
                self.sqlite_file = Path(name).expanduser()
        else:
            connect_args["connect_timeout"] = 5
        # an in-memory SQLite database exists only in the pooled connection, so it is probed through the pool
        self.engine = (
            db.engine
            if db.dialect == "sqlite" and self.sqlite_file is None
            else create_engine(db.url, poolclass=NullPool, connect_args=connect_args)
        )

    def problem(self) -> str | None:
        """None when the database answers, else one line saying why not."""
        if self.sqlite_file is not None and not self.sqlite_file.is_file():
            return f"database file {self.sqlite_file} is missing"
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT version_num FROM alembic_version")).all()
        except Exception as exc:
            return f"cannot read the database {self.db.describe()}: {first_line(exc)}"
        return None
