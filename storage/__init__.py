"""wiredesk storage: SQLAlchemy 2 models and Alembic migrations (SQLite by default, PostgreSQL for several workers)."""

from storage.db import Database, open_database

__all__ = ["Database", "open_database"]
