"""The poll-time decider: pure functions, fixed clocks and seeded randomness."""

import random
from datetime import datetime, timedelta, timezone

import pytest

from daemon.errors import ConfigError
from daemon.schedule import (
    ScheduleSettings,
    adaptive_interval,
    backoff_interval,
    freshness_floor,
    next_poll,
    parse_retry_after,
)

NOW = datetime(2024, 4, 12, 9, 0, tzinfo=timezone.utc)
HOUR = 3600.0
DEFAULT = ScheduleSettings()
DAY_MAX = ScheduleSettings(max_interval=86400.0)  # adaptation over a longer range than the hourly default


def http_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")


def hourly(count: int, newest: datetime = NOW) -> list[datetime]:
    return [newest - timedelta(hours=i) for i in range(count)]


# --- Retry-After and freshness headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (http_date(NOW + timedelta(seconds=90)), 90.0),
        (http_date(NOW - timedelta(hours=1)), 0.0),  # a date already past: no wait
        ("Friday, 12-Apr-24 09:05:00 GMT", 300.0),  # the obsolete RFC 850 form
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_accepts_a_naive_now_as_utc():
    assert parse_retry_after(http_date(NOW + timedelta(minutes=2)), NOW.replace(tzinfo=None)) == 120.0


@pytest.mark.parametrize(
    ("headers", "ttl", "expected"),
    [
        ({}, None, None),
        ({}, 60, 3600.0),
        ({}, 0, None),
        ({"cache-control": "public, max-age=600"}, None, 600.0),
        ({"Cache-Control": "max-age=900"}, None, 900.0),  # header names in any case
        ({"cache-control": "max-age=600"}, 60, 3600.0),  # the largest request wins
        ({"cache-control": "max-age=7200"}, 60, 7200.0),
        ({"cache-control": "no-cache"}, None, None),
        ({"cache-control": "s-maxage=999"}, None, None),  # for shared caches, not for a poller
        ({"expires": http_date(NOW + timedelta(minutes=20))}, None, 1200.0),
        ({"expires": http_date(NOW - timedelta(minutes=20))}, None, None),
        ({"expires": "0"}, None, None),
        # Cache-Control max-age overrides Expires, as in HTTP caching.
        ({"cache-control": "max-age=60", "expires": http_date(NOW + timedelta(hours=5))}, None, 60.0),
        ({"retry-after": "1800"}, None, 1800.0),
        ({"retry-after": "1800", "cache-control": "max-age=60"}, 10, 1800.0),
    ],
)
def test_freshness_floor(headers, ttl, expected):
    assert freshness_floor(headers, ttl, NOW) == expected


# --- adapting to how often a feed publishes ---------------------------------------------------------------------


def test_hourly_feed_is_polled_hourly():
    assert adaptive_interval(hourly(10), DEFAULT) == HOUR
    assert adaptive_interval(hourly(10), DEFAULT, now=NOW) == HOUR


def test_order_and_duplicates_do_not_matter():
    times = hourly(6)
    assert adaptive_interval(list(reversed(times)) + times[:3], DEFAULT) == HOUR


def test_too_few_dates_fall_back_to_the_default_interval():
    assert adaptive_interval([], DEFAULT) == DEFAULT.interval
    assert adaptive_interval([NOW], DEFAULT, now=NOW) == DEFAULT.interval


def test_interval_is_clamped():
    settings = ScheduleSettings(min_interval=600, max_interval=4 * HOUR)
    every_minute = [NOW - timedelta(minutes=i) for i in range(20)]
    weekly = [NOW - timedelta(weeks=i) for i in range(5)]
    assert adaptive_interval(every_minute, settings) == 600
    assert adaptive_interval(weekly, settings) == 4 * HOUR


def test_bursts_do_not_collapse_the_interval():
    # Four entries at once, every six hours: most gaps are zero, yet the feed publishes every 90 minutes.
    times = [NOW - timedelta(hours=6 * (burst + 1), seconds=s) for burst in range(4) for s in range(4)]
    interval = adaptive_interval(times, DAY_MAX, now=NOW)
    assert 80 * 60 <= interval <= 100 * 60


def test_a_feed_that_fell_silent_is_polled_less_often():
    old_burst = hourly(10, newest=NOW - timedelta(days=5))
    assert adaptive_interval(old_burst, DAY_MAX) == HOUR  # its rhythm while it was publishing
    assert adaptive_interval(old_burst, DAY_MAX, now=NOW) > 12 * HOUR  # but it has been quiet for days
    # by default never past an hour: a monitor must not go blind for a day
    assert adaptive_interval(old_burst, DEFAULT, now=NOW) == HOUR == DEFAULT.max_interval


def test_only_recent_entries_count():
    ancient = [NOW - timedelta(days=300 + i) for i in range(40)]
    assert adaptive_interval(ancient + hourly(20), DEFAULT, now=NOW) == pytest.approx(HOUR, rel=0.1)


def test_future_dates_are_ignored_and_naive_dates_are_utc():
    times = [t.replace(tzinfo=None) for t in hourly(5)] + [NOW + timedelta(days=30)]
    assert adaptive_interval(times, DEFAULT, now=NOW) == HOUR


# --- next poll ---------------------------------------------------------------------------------------------------


def test_success_uses_the_adaptive_interval():
    when, interval, _ = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10))
    assert interval == HOUR and when == NOW + timedelta(hours=1)


def test_success_respects_the_freshness_floor():
    # the floors hold past max_interval: the publisher said nothing can change before then
    first, from_ttl, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10), ttl=180)
    assert from_ttl == 3 * HOUR and source == "ttl" and first == NOW + timedelta(hours=3)
    headers = {"cache-control": "max-age=7200"}
    _, from_header, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10), headers=headers)
    assert from_header == 2 * HOUR and source == "cache"
    _, from_argument, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10), retry_after=5400)
    assert from_argument == 1.5 * HOUR and source == "retry-after"


def test_a_floor_below_the_interval_changes_nothing():
    _, interval, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10), ttl=5)
    assert interval == HOUR and source == "adaptive"


def test_the_floor_never_goes_past_max_floor():
    headers = {"cache-control": "max-age=31536000"}  # a year
    _, interval, _ = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10), headers=headers)
    assert interval == DEFAULT.max_floor == 86400.0


def test_a_rarely_publishing_feed_is_polled_within_the_hour_by_default():
    weekly = [NOW - timedelta(weeks=i) for i in range(5)]
    when, interval, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=weekly)
    assert interval == HOUR and when == NOW + timedelta(hours=1) and source == "adaptive"


def test_the_feeds_own_interval_wins_over_the_adaptation():
    # an hourly feed set to 4 hours, a weekly one set to 10 minutes: each as the user said, past max_interval too
    _, slow, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=hourly(10), interval=4 * HOUR)
    assert slow == 4 * HOUR and source == "user"
    weekly = [NOW - timedelta(weeks=i) for i in range(5)]
    _, fast, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, entry_times=weekly, interval=600)
    assert fast == 600 and source == "user"
    # the publisher's floor still holds over the user's interval, and errors still back off
    _, floored, source = next_poll(NOW, DEFAULT, ok=True, error_count=0, interval=600, ttl=30)
    assert floored == 1800 and source == "ttl"
    _, failing, source = next_poll(NOW, DEFAULT, ok=False, error_count=1, interval=600, rng=random.Random(1))
    assert source == "backoff" and failing >= DEFAULT.backoff_base * 0.8


@pytest.mark.parametrize("errors", [1, 2, 3, 4, 5])
def test_backoff_doubles_with_jitter(errors):
    base = DEFAULT.backoff_base * 2 ** (errors - 1)
    seen = {next_poll(NOW, DEFAULT, ok=False, error_count=errors, rng=random.Random(seed))[1] for seed in range(50)}
    assert all(0.8 * base <= interval <= 1.2 * base for interval in seen)
    assert max(seen) - min(seen) > 0.2 * base  # spread out, not one value for every failing feed


def test_backoff_is_capped_and_still_jittered():
    seen = {backoff_interval(errors, DEFAULT, random.Random(seed)) for seed in range(30) for errors in (9, 40, 5000)}
    assert all(0.8 * DEFAULT.backoff_max <= interval <= DEFAULT.backoff_max for interval in seen)
    assert len(seen) > 1


def test_zero_errors_on_failure_counts_as_the_first():
    _, interval, _ = next_poll(NOW, DEFAULT, ok=False, error_count=0, rng=random.Random(1))
    assert 0.8 * DEFAULT.backoff_base <= interval <= 1.2 * DEFAULT.backoff_base


def test_backoff_is_reproducible_with_a_seeded_rng():
    first = next_poll(NOW, DEFAULT, ok=False, error_count=3, rng=random.Random(7))
    second = next_poll(NOW, DEFAULT, ok=False, error_count=3, rng=random.Random(7))
    assert first == second and first[0] == NOW + timedelta(seconds=first[1])


def test_retry_after_is_a_floor_on_the_backoff():
    _, interval, _ = next_poll(NOW, DEFAULT, ok=False, error_count=1, retry_after=2 * HOUR, rng=random.Random(1))
    assert interval == 2 * HOUR
    headers = {"retry-after": http_date(NOW + timedelta(hours=3))}
    _, interval, _ = next_poll(NOW, DEFAULT, ok=False, error_count=1, headers=headers, rng=random.Random(1))
    assert interval == 3 * HOUR
    _, interval, _ = next_poll(NOW, DEFAULT, ok=False, error_count=1, retry_after=10, rng=random.Random(1))
    assert interval >= 0.8 * DEFAULT.backoff_base  # a short Retry-After does not shorten the back-off


def test_retry_after_is_capped_by_backoff_max():
    _, interval, _ = next_poll(NOW, DEFAULT, ok=False, error_count=1, retry_after=30 * 86400.0, rng=random.Random(1))
    assert interval == DEFAULT.backoff_max


@pytest.mark.parametrize(
    "kwargs",
    [{"min_interval": 0}, {"min_interval": 7200, "max_interval": 3600}, {"backoff_base": -1}, {"interval": 0}],
)
def test_inconsistent_settings_are_rejected(kwargs):
    with pytest.raises(ConfigError, match="schedule"):
        ScheduleSettings(**kwargs)
