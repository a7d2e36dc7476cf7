"""The stored vocabulary: each StrEnum member is the very string the database and the metrics hold."""

from __future__ import annotations

import pickle

from daemon.errors import FeedError, WiredeskError
from daemon.fetch.client import ERROR_KINDS
from daemon.states import FEED_ERROR_KINDS, FETCH_ERROR_KINDS, EntryState, ErrorKind, FeedStatus


def test_values_are_the_stored_strings():
    # changing one of these needs a migration of the rows that hold it
    assert [s.value for s in EntryState] == ["pending", "ready", "done", "no_text"]
    assert [s.value for s in FeedStatus] == ["active", "error", "gone"]
    assert EntryState.NO_TEXT == "no_text" and f"{FeedStatus.GONE}" == "gone" and str(ErrorKind.TLS) == "tls"


def test_one_error_vocabulary():
    assert ERROR_KINDS is FETCH_ERROR_KINDS
    assert len(FETCH_ERROR_KINDS) == 12 and not FETCH_ERROR_KINDS & FEED_ERROR_KINDS
    assert {"timeout", "gone", "protocol"} <= FETCH_ERROR_KINDS
    assert max(len(k.value) for k in ErrorKind) <= 32  # feeds.last_error_kind is a VARCHAR(32)


def test_feed_error_carries_a_kind_across_processes():
    err = FeedError("https://example.org/feed", "broken", kind="parse")
    assert err.kind is ErrorKind.PARSE and isinstance(err, WiredeskError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.url, again.message, again.kind, str(again)) == (err.url, err.message, ErrorKind.PARSE, str(err))
    assert FeedError("https://example.org/feed", "x").kind is ErrorKind.ERROR
