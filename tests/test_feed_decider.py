"""The feed-update decider, with no HTTP and no database: records in, intents out.

Each case builds what storage would have read (the stored feed, its known entries) and what the fetcher and the
parser would have returned, and checks the intent (the feed's new values, the entries to insert and change) and
the outcome the poll reports.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta, timezone

import pytest

from daemon.errors import FeedError
from daemon.fetch.client import FetchResult
from daemon.parse.feed import ParsedEntry, ParsedFeed, clean_prolog, parse_feed
from daemon.parse.identity import EntryKeys
from daemon.pipeline.feed_update import decide_feed_update
from daemon.pipeline.records import Fetched, failed_fetch
from daemon.schedule import ScheduleSettings
from daemon.states import EntryState, ErrorKind, FeedStatus, IntervalSource, WebSubState
from storage.records import MAX_URL, EntryEdit, KnownEntry, StoredFeed

NOW = datetime(2024, 4, 12, 12, 0, tzinfo=timezone.utc)
URL = "https://news.example/feed.xml"
SETTINGS = ScheduleSettings(max_interval=86400.0)  # the rhythm shows past the hourly default's cap
FEED = StoredFeed(id=7, url=URL, title=None, site_url=None, error_count=0)


def result(**given) -> FetchResult:
    values = dict(
        url=URL,
        final_url=URL,
        status=200,
        content=b"<rss/>",
        headers={},
        etag='"v1"',
        last_modified=None,
        permanent_url=None,
        not_modified=False,
        retry_after=None,
        error_kind=None,
        error=None,
        elapsed=0.1,
    )
    values.update(given)
    return FetchResult(**values)


def entry(
    n: int, title: str | None = None, url: str | None = None, published: datetime | None = None, summary: str = "text"
) -> ParsedEntry:
    return ParsedEntry(
        guid=f"g{n}",
        url=url or f"https://news.example/{n}",
        title=title or f"story {n}",
        author=None,
        summary=summary,
        content=None,
        published=published or NOW - timedelta(hours=n),
        updated=None,
    )


def keys(e: ParsedEntry, identity: str | None = None) -> EntryKeys:
    return EntryKeys(identity or f"guid:{e.guid}", e.url, e.content_hash)


def fetched(entries=(), keyed=None, title="News", **given) -> Fetched:
    parsed = ParsedFeed(URL, title, "https://news.example/", None, tuple(entries), None)
    return Fetched(FEED.id, URL, result(**given), parsed, tuple(keyed or [keys(e) for e in entries]), None)


def decide(item: Fetched, known=(), recent=(), feed=FEED, taken=()):
    return decide_feed_update(feed, item, list(known), list(recent), NOW, SETTINGS, taken, rng=random.Random(1))


def test_new_items_become_pending_entries_and_the_feed_is_active():
    intent, outcome = decide(fetched([entry(1), entry(2)]))
    assert outcome.ok and (outcome.new_entries, outcome.changed_entries) == (2, 0)
    assert [row.identity for row in intent.new_entries] == ["guid:g1", "guid:g2"]
    assert {row.state for row in intent.new_entries} == {EntryState.PENDING}
    assert all(row.feed_id == 7 and row.first_seen_at == NOW for row in intent.new_entries)
    change = intent.feed
    assert change.status is FeedStatus.ACTIVE and change.error_count == 0 and change.succeeded_at == NOW
    assert change.validators is not None and change.validators.etag == '"v1"' and change.failed_at is None
    assert change.about is not None and change.about.title == "News" and change.polled_at == NOW
    assert NOW < change.next_poll_at <= NOW + timedelta(seconds=SETTINGS.max_interval)


def test_known_unchanged_entries_write_nothing():
    e = entry(1)
    known = [KnownEntry(3, "guid:g1", e.url, e.content_hash, e.published)]
    intent, outcome = decide(fetched([e]), known)
    assert (outcome.new_entries, outcome.changed_entries) == (0, 0)
    assert intent.new_entries == () and intent.changed_entries == {} and intent.retitled == {}


def test_a_changed_entry_is_updated_and_its_article_retitled():
    old, new = entry(1), entry(1, title="story 1, corrected")
    known = [KnownEntry(3, "guid:g1", old.url, old.content_hash, old.published)]
    intent, outcome = decide(fetched([new]), known)
    assert outcome.changed_entries == 1
    edit = intent.changed_entries[3]
    assert edit.identity is None and edit.content is not None
    assert edit.content.title == "story 1, corrected" and edit.content.changed_at == NOW
    assert intent.retitled == {3: "story 1, corrected"}


def test_a_new_guid_for_a_known_link_is_the_same_entry():
    e = entry(1)
    known = [KnownEntry(3, "guid:old", e.url, e.content_hash, e.published)]
    intent, outcome = decide(fetched([e], [keys(e, "guid:new")]), known)
    assert outcome.new_entries == 0 and intent.new_entries == ()
    assert intent.changed_entries == {3: EntryEdit(identity="guid:new")}


def test_an_item_listed_twice_is_one_entry_with_the_later_content():
    first, second = entry(1), entry(1, summary="longer text")
    intent, outcome = decide(fetched([first, second], [keys(first), keys(second)]))
    assert (outcome.new_entries, outcome.changed_entries) == (1, 1)
    (row,) = intent.new_entries
    assert row.summary == "longer text" and row.content_hash == second.content_hash


def test_a_failed_fetch_backs_off_and_keeps_the_entries():
    feed = StoredFeed(7, URL, "News", None, error_count=2)
    item = Fetched(
        7,
        URL,
        result(
            status=503,
            content=None,
            error_kind=ErrorKind.UNAVAILABLE,
            error=f"{URL}: 503 Service Unavailable",
            etag=None,
        ),
        None,
        (),
        None,
    )
    intent, outcome = decide(item, feed=feed)
    assert not outcome.ok and outcome.error_kind is ErrorKind.UNAVAILABLE
    assert intent.feed.status is FeedStatus.ERROR and intent.feed.error_count == 3
    assert intent.feed.last_error_kind is ErrorKind.UNAVAILABLE and intent.feed.failed_at == NOW
    assert intent.feed.validators is None and intent.feed.succeeded_at is None and intent.new_entries == ()


def test_gone_is_final():
    item = Fetched(7, URL, result(status=410, content=None, error_kind=ErrorKind.GONE, error="gone"), None, (), None)
    intent, outcome = decide(item)
    assert intent.feed.status is FeedStatus.GONE and outcome.error == f"{URL}: gone"


def test_a_parse_error_is_the_feeds_error():
    item = failed_fetch(7, URL, FeedError(URL, "broken feed", kind=ErrorKind.PARSE), result())
    intent, outcome = decide(item)
    assert outcome.error_kind is ErrorKind.PARSE and outcome.error == f"{URL}: broken feed"
    assert intent.feed.status is FeedStatus.ERROR and intent.feed.last_error_kind is ErrorKind.PARSE


def test_not_modified_keeps_validators_and_takes_the_rhythm_of_stored_entries():
    item = Fetched(7, URL, result(status=304, content=None, not_modified=True, etag=None), None, (), None)
    hourly = [NOW - timedelta(hours=h) for h in range(20)]
    intent, outcome = decide(item, recent=hourly)
    assert outcome.ok and outcome.not_modified and intent.feed.validators is None and intent.feed.about is None
    daily = [NOW - timedelta(days=d) for d in range(20)]
    later, _ = decide(item, recent=daily)
    assert intent.feed.interval_seconds < later.feed.interval_seconds


def test_a_permanent_redirect_moves_the_feed_unless_the_url_is_taken():
    moved = "https://news.example/new-feed.xml"
    intent, outcome = decide(fetched([], permanent_url=moved))
    assert intent.feed.moved_to == moved and outcome.feed_url == moved
    intent, outcome = decide(fetched([], permanent_url=moved), taken=[moved])
    assert intent.feed.moved_to is None and outcome.feed_url == URL
    too_long = "https://news.example/" + "x" * MAX_URL
    intent, _ = decide(fetched([], permanent_url=too_long))
    assert intent.feed.moved_to is None and intent.feed.last_error_kind is ErrorKind.WARNING


def test_the_decider_is_deterministic_and_leaves_its_inputs_alone():
    e = entry(1)
    known = [KnownEntry(3, "guid:old", e.url, e.content_hash, e.published)]
    item = fetched([e], [keys(e, "guid:new")])
    assert decide(item, known) == decide(item, known)
    assert known[0].identity == "guid:old"


# ---- feed parsing and the prolog check, without HTTP -----------------------------------------------------------


def test_parse_feed_reads_items():
    data = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><link>https://news.example/</link>"
        b"<item><title>A</title><link>https://news.example/a</link><guid>a1</guid>"
        b"<pubDate>Fri, 12 Apr 2024 10:00:00 GMT</pubDate></item></channel></rss>"
    )
    feed = parse_feed(data, URL)
    assert feed.title == "T" and len(feed.entries) == 1
    (item,) = feed.entries
    assert (item.guid, item.title, item.url) == ("a1", "A", "https://news.example/a")
    assert item.published == datetime(2024, 4, 12, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "prolog",
    [
        b'<!DOCTYPE rss [<!ENTITY a "aaaa">]>',
        b'<!DOCTYPE rss SYSTEM "x"><!DOCTYPE rss SYSTEM "y">',
        b'<!ENTITY a "b">',
    ],
)
def test_the_prolog_check_refuses_declarations(prolog):
    with pytest.raises(FeedError) as exc:
        clean_prolog(b"<?xml version='1.0'?>" + prolog + b"<rss version='2.0'><channel/></rss>", URL)
    assert exc.value.kind is ErrorKind.REFUSED_XML


def test_the_prolog_check_passes_a_plain_document():
    data = b"<?xml version='1.0'?>\n\n<rss version='2.0'><channel/></rss>"
    assert clean_prolog(data, URL).endswith(b"<rss version='2.0'><channel/></rss>")


def test_the_feeds_own_interval_and_a_hub_set_the_schedule():
    item = Fetched(7, URL, result(status=304, content=None, not_modified=True, etag=None), None, (), None)
    hourly = [NOW - timedelta(hours=h) for h in range(20)]
    own = dataclasses.replace(FEED, poll_interval_seconds=4 * 3600.0)
    intent, _ = decide(item, recent=hourly, feed=own)
    assert (intent.feed.interval_seconds, intent.feed.interval_source) == (4 * 3600.0, IntervalSource.USER)
    assert intent.feed.next_poll_at == NOW + timedelta(hours=4)
    pushed = dataclasses.replace(FEED, websub_state=WebSubState.ACTIVE)
    intent, _ = decide(item, recent=hourly, feed=pushed)
    assert (intent.feed.interval_seconds, intent.feed.interval_source) == (SETTINGS.max_interval, IntervalSource.WEBSUB)
    intent, _ = decide(item, recent=hourly)
    assert (intent.feed.interval_seconds, intent.feed.interval_source) == (3600.0, IntervalSource.ADAPTIVE)
