"""Telling the database's own failures from the content it refused, without the caller importing SQLAlchemy."""

from __future__ import annotations

from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = [
    "SQLAlchemyError",
    "database_failure",
    "is_conflict",
    "is_database_error",
    "is_storage_failure",
    "storage_reason",
]


def is_storage_failure(exc: BaseException) -> bool:
    """Whether the database itself failed (full or read-only disk, lost connection, broken schema), as opposed to
    one feed's or one article's content that the database refused; only the first stops a poll's writing."""
    if isinstance(
        exc, (OperationalError, InterfaceError, InternalError, ProgrammingError, DisconnectionError, PoolTimeout)
    ):
        return True
    try:  # the shared indexes: Redis out of reach fails every article alike, none of them is the cause
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout
    except ImportError:
        return False
    return isinstance(exc, (RedisConnectionError, RedisTimeout))


def is_conflict(exc: BaseException) -> bool:
    """A unique key refused a row: another worker committed the same one first (one article per page, say)."""
    return isinstance(exc, IntegrityError)


def is_database_error(exc: BaseException) -> bool:
    """Any error raised by the database layer (SQLAlchemy), whatever its cause."""
    return isinstance(exc, SQLAlchemyError)


def storage_reason(exc: BaseException) -> str:
    """The driver's own words ("database or disk is full", "attempt to write a readonly database"), one line."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def database_failure(exc: BaseException, url: str) -> str:
    """One line for a database error met after the database opened: which database, the driver's words, what to do."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        shown = url
    return (
        f"database {shown}: {storage_reason(exc)} (is it damaged, or changed by another program? restore it "
        f"from a backup, or point database.url or WIREDESK_DATABASE_URL at another database)"
    )
