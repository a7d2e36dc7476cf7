"""One exception hierarchy for everything a user can cause.

The CLI turns any WiredeskError into a single line on stderr and exit code 2; the message must say what is wrong,
where, and what to do. Causes are chained (``raise ... from exc``) so that logs at debug level keep the detail.

    WiredeskError
    ├── ConfigError      the configuration file or a setting (also raised for inconsistent settings in code)
    ├── InputError       a file, argument or query parameter (AmbiguousStory: a story prefix several share)
    │   └── CorpusError  a line of a `wiredesk cluster` corpus (daemon.cli.cluster)
    ├── StorageError     the database or the shared Redis indexes cannot be opened, read or written; storage
    │   │                raises nothing else (the database library's errors are its causes)
    │   ├── StorageConflict  a unique key refused a row: another worker stored the same one first
    │   └── StorageRefused   the database refused the values given (the content's problem; the database works)
    ├── FeedError        one feed could not be fetched, parsed or stored; carries the URL and an ErrorKind
    ├── RefusedAddress   a host resolves only to addresses the fetch policy refuses (daemon.fetch.client); the
    │                    fetcher reports it as the feed's refused_address error
    ├── EngineError      the engine was given what it cannot take: an article indexed twice, a date without a
    │   │                time zone, a story model or setting it does not have (also a ValueError)
    │   └── FingerprintError  a stored fingerprint this version cannot read (daemon.engine.fingerprint)
    └── ModelError       the sentence-embedding model is missing or damaged (daemon.engine.embed)

Library errors (SQLAlchemy, Redis, OS errors) are wrapped into these where they reach the user, with the library's
exception as the cause. ``first_line`` is the one way to say an exception in one line.

This module and ``daemon.states`` import nothing else of wiredesk: they are the vocabulary that storage and the
stages share (tests/test_layout.py checks it).
"""

from __future__ import annotations

from daemon.states import ErrorKind


class WiredeskError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, unreachable database)."""

    exit_code = 2


class ConfigError(WiredeskError):
    """The configuration file or a setting is invalid."""


class InputError(WiredeskError):
    """A file or argument given on the command line is invalid."""


class AmbiguousStory(InputError):
    """A story id prefix that several stories share."""


class StorageError(WiredeskError):
    """The database cannot be opened, migrated, read or written, or holds what it must not.

    ``reason`` is the driver's own words in one line ("database or disk is full"), for messages that name the
    database and the feed or article themselves; the message is the whole line a user reads."""

    database_failed = True  # the database itself failed: whatever is written next fails alike

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class StorageConflict(StorageError):
    """A unique key refused a row: another worker committed the same one first (one article per page, say)."""

    database_failed = False


class StorageRefused(StorageError):
    """The database refused the values given (a value it cannot hold); the database itself works."""

    database_failed = False


class EngineError(WiredeskError, ValueError):
    """The engine was given what it cannot take (its callers, and its tests, may catch it as a ValueError)."""


class FeedError(WiredeskError):
    """A feed could not be fetched or parsed; carries the feed URL."""

    def __init__(self, url: str, message: str, kind: ErrorKind = ErrorKind.ERROR):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message
        self.kind = ErrorKind(kind)

    def __reduce__(self) -> tuple[type[FeedError], tuple[str, str, ErrorKind]]:
        # parsed in worker processes: must survive pickling with its fields
        return (FeedError, (self.url, self.message, self.kind))


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """What ``exc`` says, in one line: the first line of its message (of the driver's error, when it wraps one), else
    the name of its type; at most ``limit`` characters."""
    said = getattr(exc, "orig", None) or exc
    line = next((text.strip() for text in str(said).splitlines() if text.strip()), "") or type(said).__name__
    return line[:limit] if limit is not None else line
