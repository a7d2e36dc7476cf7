"""The door of storage: the database library's errors turned into wiredesk's own, with the library's as the cause.

Callers of storage see a ``StorageError`` (the database failed: a full or read-only disk, a lost connection, a broken
schema; or the shared Redis indexes are out of reach), a ``StorageConflict`` (a unique key refused a row another worker
stored first) or a ``StorageRefused`` (the database refused the values given: the content's problem), never an
SQLAlchemy exception. ``Database.session`` translates what happens in a transaction.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from daemon.errors import StorageConflict, StorageError, StorageRefused, first_line

__all__ = ["shown_url", "storage_error"]

# the database itself failed, as opposed to one feed's or one article's content that it refused
_DATABASE_FAILED = (OperationalError, InterfaceError, InternalError, ProgrammingError, DisconnectionError, PoolTimeout)


def _redis_unreachable(exc: BaseException) -> bool:
    """The shared indexes out of reach: that fails every article alike, none of them is the cause."""
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout
    except ImportError:
        return False
    return isinstance(exc, (RedisConnectionError, RedisTimeout))


def shown_url(url: str) -> str:
    """A database URL as messages show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def storage_error(exc: BaseException, shown: str) -> StorageError | None:
    """wiredesk's error for ``exc`` met on the database ``shown`` (None when it is not the database's nor Redis's):
    its message the one line a user reads (which database, the driver's words, what to do), its ``reason`` the
    driver's words alone. The caller raises it from ``exc``."""
    if _redis_unreachable(exc):
        return StorageError(f"the shared indexes in Redis cannot be reached: {first_line(exc)}", first_line(exc))
    if not isinstance(exc, SQLAlchemyError):
        return None
    reason = first_line(exc)
    message = (
        f"database {shown}: {reason} (is it damaged, or changed by another program? restore it from a backup, or "
        f"point database.url or WIREDESK_DATABASE_URL at another database)"
    )
    if isinstance(exc, IntegrityError):
        return StorageConflict(message, reason)
    if isinstance(exc, _DATABASE_FAILED):
        return StorageError(message, reason)
    return StorageRefused(message, reason)
