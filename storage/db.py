"""Opening the database: URL checks, SQLite pragmas, migrations applied on start."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicCommandError
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from daemon.errors import StorageError, first_line
from storage.failures import shown_url, storage_error

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def _sqlite_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets the HTTP server read while a poll writes; NORMAL sync is durable across crashes of the process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    def __init__(self, url: str, create_folder: bool = False):
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StorageError(
                f"database URL {url!r} is not valid (expected e.g. sqlite:///path/to/wiredesk.db or postgresql+psycopg://host/db)"
            ) from exc
        self.url = parsed
        self.shown = shown_url(url)  # as the user gave it, without its password: what error messages name
        self.dialect = parsed.get_backend_name()
        kwargs: dict = {}
        if self.dialect == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                folder = Path(database).expanduser().parent
                if not create_folder and not folder.is_dir():
                    # a typo in a configured path must not leave a new tree of folders and an empty database behind
                    raise StorageError(
                        f"database {database}: the folder {folder} does not exist; create it, or fix database.url "
                        f"(or WIREDESK_DATABASE_URL)"
                    )
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StorageError(f"cannot create the folder {folder} for the database: {exc.strerror}") from exc
        elif self.dialect == "postgresql":
            if parsed.drivername == "postgresql":
                # psycopg 3 is the driver we ship; SQLAlchemy would otherwise look for psycopg2.
                self.url = parsed.set(drivername="postgresql+psycopg")
            kwargs["pool_pre_ping"] = True
        else:
            raise StorageError(f"database URL {url!r}: only sqlite and postgresql are supported")
        try:
            self.engine = create_engine(self.url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise StorageError(f"cannot use database URL {url!r}: {exc}") from exc
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def check(self) -> None:
        """Connect once, turning driver errors into one clear line."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:  # cannot connect, or a file that is not a database at all
            raise StorageError(
                f"cannot open database {self.describe()}: {first_line(exc)} (check database.url or WIREDESK_DATABASE_URL)"
            ) from exc

    def migrate(self) -> None:
        self.check()
        try:
            cfg = _alembic_config(self.engine)
            with self.engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(cfg).get_current_head()
            if current != head:
                log.debug("migrating database %s from %s to %s", self.describe(), current, head)
                command.upgrade(cfg, "head")
        except AlembicCommandError as exc:  # a schema revision this version does not know
            raise StorageError(
                f"cannot migrate database {self.describe()}: {first_line(exc)}; it was written by "
                f"another version of wiredesk: use that version, or point database.url (or "
                f"WIREDESK_DATABASE_URL) at another database"
            ) from exc
        except SQLAlchemyError as exc:
            raise StorageError(
                f"cannot migrate database {self.describe()}: {first_line(exc)} (is it a wiredesk "
                f"database? check database.url or WIREDESK_DATABASE_URL)"
            ) from exc

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any error. The door of storage: what the database
        (or the shared Redis indexes) raised in it comes out as a StorageError (storage.failures)."""
        try:
            with self.sessions() as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
        except Exception as exc:
            failure = storage_error(exc, self.shown)
            if failure is None:
                raise
            raise failure from exc

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, migrate: bool = True, create_folder: bool = False) -> Database:
    """The database at ``url``, migrated; an SQLite file's folder is created only with ``create_folder`` (the default
    location), else it must exist."""
    db = Database(url, create_folder=create_folder)
    if migrate:
        db.migrate()
    return db


__all__ = ["Database", "open_database"]
