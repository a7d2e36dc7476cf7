"""The words wiredesk stores and reports: entry states, feed status, error kinds, schedule sources, WebSub states.

Each is a ``StrEnum`` whose values are the strings in the database columns (``entries.state``, ``feeds.status``,
``feeds.last_error_kind``) and in the metrics labels, so a member compares equal to the stored string and no
migration is needed when code moves from strings to members.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ChangeKind",
    "EntryState",
    "ErrorKind",
    "FEED_ERROR_KINDS",
    "FETCH_ERROR_KINDS",
    "FeedStatus",
    "IntervalSource",
    "TextSource",
    "WebSubState",
]


class EntryState(StrEnum):
    """Where an entry is on its way to a story."""

    PENDING = "pending"  # stored from the feed, its article text not looked for yet
    READY = "ready"  # its text found and kept on the entry, its story not decided yet
    DONE = "done"  # its article stored and its story decided
    NO_TEXT = "no_text"  # neither the page nor the feed gave text


class ChangeKind(StrEnum):
    """What a settling pass did to the stories (``story_changes.kind``)."""

    MERGE = "merge"  # a story absorbed into another: its articles moved there, its id an alias of the other
    MOVE = "move"  # an article (with its copies) moved from one story to another


class FeedStatus(StrEnum):
    ACTIVE = "active"  # polled on its schedule
    ERROR = "error"  # its last poll failed; backing off
    GONE = "gone"  # answered 410: kept, never polled again


class IntervalSource(StrEnum):
    """Where a feed's poll interval came from (``feeds.interval_source``, shown by `feeds list`)."""

    USER = "user"  # the feed's own interval
    ADAPTIVE = "adaptive"  # its publishing rhythm
    TTL = "ttl"  # the feed's <ttl> raised it
    CACHE = "cache"  # Cache-Control max-age or Expires raised it
    RETRY_AFTER = "retry-after"  # the server asked to wait
    BACKOFF = "backoff"  # the feed is failing
    WEBSUB = "websub"  # a hub pushes it: polling is the safety net


class WebSubState(StrEnum):
    """A feed's WebSub subscription (``feeds.websub_state``)."""

    PENDING = "pending"  # asked for, the hub's verification not seen yet
    ACTIVE = "active"  # verified: the hub pushes the feed
    DENIED = "denied"  # the hub refused it


class TextSource(StrEnum):
    """Where an article's text came from."""

    PAGE = "page"  # extracted from the article page
    FEED = "feed"  # the feed's own content, when the page failed or was empty


class ErrorKind(StrEnum):
    """What went wrong with a feed: one vocabulary for the fetcher, the parser, the pipeline and the metrics."""

    # the fetcher's (FetchResult.error_kind)
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    CONNECT = "connect"
    REFUSED_ADDRESS = "refused_address"
    GONE = "gone"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    HTTP_ERROR = "http_error"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    BAD_URL = "bad_url"
    TLS = "tls"
    PROTOCOL = "protocol"  # a server that breaks HTTP or sends a corrupt compressed body
    # the parser's
    PARSE = "parse"
    REFUSED_XML = "refused_xml"  # a document refused before parsing (entities, an unsafe encoding)
    # the pipeline's
    FETCH = "fetch"  # fetching failed in an unexpected way (a bug the feed triggers)
    STORE = "store"  # the feed's content could not be stored; the feed backs off
    STORAGE = "storage"  # the database itself failed; nothing of the feed was written
    WARNING = "warning"  # stored in feeds.last_error_kind: parsed, with a warning
    ERROR = "error"  # a feed error of no more precise kind


FETCH_ERROR_KINDS = frozenset(
    {
        ErrorKind.TIMEOUT,
        ErrorKind.TOO_LARGE,
        ErrorKind.CONNECT,
        ErrorKind.REFUSED_ADDRESS,
        ErrorKind.GONE,
        ErrorKind.RATE_LIMITED,
        ErrorKind.UNAVAILABLE,
        ErrorKind.HTTP_ERROR,
        ErrorKind.TOO_MANY_REDIRECTS,
        ErrorKind.BAD_URL,
        ErrorKind.TLS,
        ErrorKind.PROTOCOL,
    }
)
# the kinds a poll's FeedError carries
FEED_ERROR_KINDS = frozenset(
    {ErrorKind.PARSE, ErrorKind.REFUSED_XML, ErrorKind.FETCH, ErrorKind.STORE, ErrorKind.ERROR}
)
