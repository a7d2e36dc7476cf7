"""When to poll a feed next: pure functions, no I/O.

The scheduler hands in what the last fetch showed (success or the number of consecutive errors, the entry dates
seen, the response headers, the feed's <ttl>) and gets back the next poll time. Keeping this free of I/O makes the
policy easy to test and to explain in `feeds list`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from daemon.errors import ConfigError

__all__ = [
    "NextPoll",
    "ScheduleSettings",
    "adaptive_interval",
    "backoff_interval",
    "freshness_floor",
    "freshness_floors",
    "next_poll",
    "parse_http_date",
    "parse_retry_after",
]

# Feeds list 10-50 entries; the newest 20 describe the current publishing rate without remembering last year.
RECENT_ENTRIES = 20
JITTER = 0.2


@dataclass(frozen=True)
class ScheduleSettings:
    interval: float = 1800.0  # seconds between polls when the feed's own rhythm is unknown
    min_interval: float = 300.0  # never poll a feed more often than this
    max_interval: float = (
        3600.0  # never leave a working feed unpolled for longer than this (a monitor must not go blind)
    )
    backoff_base: float = 600.0  # first back-off after an error
    backoff_max: float = 86400.0
    max_floor: float = 86400.0  # the longest wait a publisher's <ttl>, Cache-Control, Expires or Retry-After can ask

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ConfigError("schedule: need 0 < min_interval <= max_interval")
        if self.max_floor <= 0:
            raise ConfigError("schedule: max_floor must be positive")
        if not 0 < self.backoff_base <= self.backoff_max:
            raise ConfigError("schedule: need 0 < backoff_base <= backoff_max")
        if self.interval <= 0:
            raise ConfigError("schedule: interval must be positive")


def _aware(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC: feeds without a zone mostly mean UTC, and comparing naive with aware fails."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 / asctime forms) as an aware datetime."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return _aware(moment)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a Retry-After value: a delay in seconds or an HTTP date (past dates give 0)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    moment = parse_http_date(value)
    if moment is None:
        return None
    return max(0.0, (moment - _aware(now)).total_seconds())


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


def _max_age(cache_control: str) -> int | None:
    match = _MAX_AGE.search(cache_control)
    return int(match.group(1)) if match else None


def freshness_floor(headers: Mapping[str, str], ttl_minutes: int | None, now: datetime) -> float | None:
    """The longest wait the publisher asked for, in seconds, or None when it asked for nothing.

    Sources: the RSS <ttl> (minutes), Cache-Control max-age, Expires and Retry-After. As in HTTP caching
    (RFC 9111 5.3), Expires counts only when Cache-Control has no max-age. The result is meant as a floor on the next
    interval: polling before the publisher says anything can have changed only costs both sides.
    """
    floors = freshness_floors(headers, ttl_minutes, now)
    return max(floors.values()) if floors else None


def freshness_floors(headers: Mapping[str, str], ttl_minutes: int | None, now: datetime) -> dict[str, float]:
    """Each wait the publisher asked for, in seconds, by where it asked: "ttl", "cache" (Cache-Control max-age or
    Expires) and "retry-after"; only positive ones (see :func:`freshness_floor`)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    candidates: dict[str, float] = {}
    if ttl_minutes is not None and ttl_minutes > 0:
        candidates["ttl"] = ttl_minutes * 60.0
    max_age = _max_age(lowered.get("cache-control", ""))
    if max_age is not None:
        candidates["cache"] = float(max_age)
    else:
        expires = parse_http_date(lowered.get("expires"))
        if expires is not None:
            candidates["cache"] = max(0.0, (expires - _aware(now)).total_seconds())
    retry_after = parse_retry_after(lowered.get("retry-after"), now)
    if retry_after is not None:
        candidates["retry-after"] = retry_after
    return {source: seconds for source, seconds in candidates.items() if seconds > 0}


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


def adaptive_interval(
    entry_times: Sequence[datetime], settings: ScheduleSettings = ScheduleSettings(), *, now: datetime | None = None
) -> float:
    """Seconds between polls that follow how often the feed publishes, clamped to [min_interval, max_interval].

    The estimate is the mean gap over the newest entries: the span they cover divided by their gaps. A mean and
    not a median of gaps, because news feeds publish in bursts (several entries in the same minute), which would
    make the median gap nearly zero. With ``now`` the span runs up to now, so a feed that has fallen silent is
    polled less and less often instead of keeping the rate of its last burst. Fewer than two dates: the default.
    """
    moments = sorted({_aware(moment) for moment in entry_times})
    if now is not None:
        now = _aware(now)
        moments = [moment for moment in moments if moment <= now]  # dates in the future are clock errors
    moments = moments[-RECENT_ENTRIES:]
    if len(moments) < 2:
        return _clamp(settings.interval, settings.min_interval, settings.max_interval)
    # Gaps after the oldest entry; with ``now`` the open gap since the newest entry counts as part of the span.
    end = now if now is not None else moments[-1]
    mean_gap = (end - moments[0]).total_seconds() / (len(moments) - 1)
    return _clamp(mean_gap, settings.min_interval, settings.max_interval)


def _get(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def backoff_interval(error_count: int, settings: ScheduleSettings, rng: random.Random) -> float:
    """Exponential back-off with ±20% jitter, so that feeds that failed together do not retry together.

    The jitter never goes past backoff_max: a dead feed is retried at most once per backoff_max.
    """
    exponent = min(max(error_count, 1) - 1, 64)  # 2**64 * anything already exceeds any sensible cap
    base = min(settings.backoff_base * 2.0**exponent, settings.backoff_max)
    return rng.uniform(base * (1 - JITTER), min(base * (1 + JITTER), settings.backoff_max))


class NextPoll(NamedTuple):
    """When to poll a feed next, the interval that led there, and where that interval came from: "user" (the feed's
    own interval), "adaptive" (its publishing rhythm), "ttl", "cache" or "retry-after" (the publisher's floor raised
    it), or "backoff" (it is failing)."""

    when: datetime
    interval: float
    source: str


def next_poll(
    now: datetime,
    settings: ScheduleSettings = ScheduleSettings(),
    *,
    ok: bool,
    error_count: int,
    entry_times: Sequence[datetime] = (),
    headers: Mapping[str, str] | None = None,
    ttl: int | None = None,
    retry_after: float | None = None,
    rng: random.Random | None = None,
    interval: float | None = None,
) -> NextPoll:
    """The next poll time, the interval that led to it and its source.

    On success: the feed's own `interval` (seconds, set by the user) when it has one, else the adaptive interval
    within max_interval; either raised to the publisher's freshness floor, which counts up to max_floor: the
    publisher knows when the feed can have changed, but a header asking for a year of silence must not silence a
    feed for a year. On
    error (``error_count`` consecutive errors, this one included): exponential back-off with jitter, raised to the
    server's Retry-After, within backoff_max.
    """
    now = _aware(now)
    headers = headers or {}
    if ok:
        if interval is not None:
            seconds, source = float(interval), "user"
        else:
            seconds, source = adaptive_interval(entry_times, settings, now=now), "adaptive"
        floors = freshness_floors(headers, ttl, now)
        if retry_after is not None and retry_after > 0:
            floors["retry-after"] = max(floors.get("retry-after", 0.0), retry_after)
        if floors:
            floor_source = max(floors, key=lambda k: floors[k])
            floor = min(floors[floor_source], settings.max_floor)
            if floor > seconds:
                seconds, source = floor, floor_source
    else:
        seconds, source = backoff_interval(error_count, settings, rng or random.Random()), "backoff"
        asked = [s for s in (retry_after, parse_retry_after(_get(headers, "retry-after"), now)) if s]
        if asked:
            seconds = max(seconds, min(max(asked), settings.backoff_max))
    return NextPoll(now + timedelta(seconds=seconds), seconds, source)
