"""Queries of WebSub subscriptions (see daemon/websub.py): which are due, the hub's verification, a push's secret."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from storage.db import Database
from storage.models import Feed

log = logging.getLogger("daemon.websub")

LEASE_ASKED = 10 * 86400  # seconds of lease asked of the hub (it may grant another)
# the lease a hub grants is taken within these bounds: a 1-second lease would have the hub asked again every tick,
# a lease of a year would keep polling slow long after the hub forgot the subscription
MIN_LEASE = 3600
MAX_LEASE = 30 * 86400
RENEW_MARGIN = 86400.0  # renew a lease this long before it ends (or halfway through a shorter one)
RETRY_PENDING = 600.0  # a subscription the hub never verified is asked for again after this long
RETRY_DENIED = 86400.0  # a subscription the hub denied is asked for again after this long


def _renew_at(feed: Feed) -> datetime | None:
    if feed.websub_lease_until is None or feed.websub_requested_at is None:
        return None
    lease = (feed.websub_lease_until - feed.websub_requested_at).total_seconds()
    return feed.websub_lease_until - timedelta(seconds=min(RENEW_MARGIN, lease / 2))


def due_subscriptions(db: Database, now: datetime) -> list[tuple[int, str, str, str, str]]:
    """(feed id, hub, topic, secret, token) of the feeds to subscribe now: never asked, a lease near its end, a
    request the hub left unverified or a denial a day old; each is marked pending with its secret and a new one-time
    token (which goes into the callback URL) before the hub is asked, so that the hub's verification (which may come
    before its answer) finds it."""
    out = []
    with db.session() as s:
        feeds = s.scalars(select(Feed).where(Feed.hub_url.is_not(None), Feed.status != "gone"))
        for feed in feeds:
            state = feed.websub_state
            renew = _renew_at(feed)
            if state == "active" and renew is not None and now < renew:
                continue
            waited = now - feed.websub_requested_at if feed.websub_requested_at else None
            if state == "pending" and waited is not None and waited < timedelta(seconds=RETRY_PENDING):
                continue
            if state == "denied" and waited is not None and waited < timedelta(seconds=RETRY_DENIED):
                continue
            feed.websub_secret = feed.websub_secret or secrets.token_hex(32)
            if state != "active":
                feed.websub_state = "pending"
            feed.websub_requested_at = now
            # a new request, a new callback: the hub's verification of this request is taken once, and no other
            feed.websub_token = secrets.token_urlsafe(24)
            feed.websub_answered = False
            out.append(
                (feed.id, str(feed.hub_url), feed.websub_topic or feed.url, feed.websub_secret, feed.websub_token)
            )
    return out


def verify(db: Database, feed_id: int, token: str | None, params: dict[str, str], now: datetime) -> tuple[int, str]:
    """The hub's verification of intent (GET on the callback): (HTTP status, body).

    Only the latest request wiredesk made for this feed is confirmed, once: the callback's one-time ``token`` must be
    that request's, not yet verified, and the topic the one asked for; then hub.challenge is echoed and the lease
    the hub grants is taken within MIN_LEASE..MAX_LEASE. A denial ends only the subscription its callback names (the
    token of the latest request), which is asked for again a day later. Anything else is refused (404), so nobody
    who merely knows the feed's id and topic can confirm, stretch, shorten or end a subscription."""
    mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        if feed is None or feed.hub_url is None:
            return 404, "no such subscription"
        ours = bool(token) and feed.websub_token is not None and secrets.compare_digest(token or "", feed.websub_token)
        if not ours:
            if mode == "unsubscribe" and feed.websub_state not in ("pending", "active"):
                return 200, params.get("hub.challenge", "")
            return 404, "not a subscription request this server made"
        if topic != (feed.websub_topic or feed.url):
            return 404, "not the topic of this subscription"
        if mode == "denied":
            feed.websub_state = "denied"
            feed.websub_requested_at = now
            feed.websub_lease_until = None
            feed.websub_token = None
            log.warning(
                "WebSub: hub %s denied the subscription of %s: %s (asked again in %d h)",
                feed.hub_url,
                topic,
                params.get("hub.reason", "no reason given")[:200],
                RETRY_DENIED // 3600,
            )
            return 200, ""
        if mode == "subscribe" and feed.websub_state in ("pending", "active") and not feed.websub_answered:
            challenge = params.get("hub.challenge", "")
            if not challenge:
                return 400, "hub.challenge missing"
            try:
                granted = int(params.get("hub.lease_seconds") or LEASE_ASKED)
            except ValueError:
                granted = LEASE_ASKED
            lease = max(MIN_LEASE, min(granted, MAX_LEASE))
            feed.websub_state = "active"
            feed.websub_answered = True
            feed.websub_requested_at = now
            feed.websub_lease_until = now + timedelta(seconds=lease)
            log.info("WebSub: %s pushes %s for %d s", feed.hub_url, topic, lease)
            return 200, challenge
        return 404, "not a subscription request this server is waiting for"


def push_secret(db: Database, feed_id: int) -> tuple[bool, str | None, str | None]:
    """(is this a feed with an active or pending subscription, its secret, its hub)."""
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        if feed is None or feed.hub_url is None or feed.websub_state not in ("pending", "active"):
            return False, None, None
        return True, feed.websub_secret, feed.hub_url


def make_due(db: Database, feed_id: int, now: datetime) -> None:
    """The feed is polled at the service's next look for due feeds (a push that is only a signal)."""
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        if feed is not None and feed.status != "gone":
            feed.next_poll_at = now
