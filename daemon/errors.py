"""One exception hierarchy for everything a user can cause.

The CLI turns any WiredeskError into a single line on stderr and exit code 2; the message must say what is wrong,
where, and what to do. Causes are chained (``raise ... from exc``) so that logs at debug level keep the detail.
"""


class WiredeskError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, unreachable database)."""

    exit_code = 2


class ConfigError(WiredeskError):
    """The configuration file or a setting is invalid."""


class InputError(WiredeskError):
    """A file or argument given on the command line is invalid."""


class StorageError(WiredeskError):
    """The database cannot be opened, migrated or written."""


class FeedError(WiredeskError):
    """A feed could not be fetched or parsed; carries the feed URL."""

    def __init__(self, url: str, message: str, kind: str = "error"):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.message = message
        self.kind = kind

    def __reduce__(self):
        # parsed in worker processes: must survive pickling with its fields
        return (FeedError, (self.url, self.message, self.kind))
