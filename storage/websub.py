"""Queries of WebSub subscriptions (see daemon/websub.py): which are due, the hub's verification, a push's secret."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from storage.db import Database
from storage.models import Feed

log = logging.getLogger("daemon.websub")

LEASE_ASKED = 10 * 86400  # seconds of lease asked of the hub (it may grant another)
RENEW_MARGIN = 86400.0  # renew a lease this long before it ends (or halfway through a shorter one)
RETRY_PENDING = 600.0  # a subscription the hub never verified is asked for again after this long


def _renew_at(feed: Feed) -> datetime | None:
    if feed.websub_lease_until is None or feed.websub_requested_at is None:
        return None
    lease = (feed.websub_lease_until - feed.websub_requested_at).total_seconds()
    return feed.websub_lease_until - timedelta(seconds=min(RENEW_MARGIN, lease / 2))


def due_subscriptions(db: Database, now: datetime) -> list[tuple[int, str, str, str]]:
    """(feed id, hub, topic, secret) of the feeds to subscribe now: never asked, a lease near its end, or a request
    the hub left unverified; each is marked pending with its secret before the hub is asked, so that the hub's
    verification (which may come before its answer) finds it."""
    out = []
    with db.session() as s:
        feeds = s.scalars(
            select(Feed).where(
                Feed.hub_url.is_not(None),
                Feed.status != "gone",
                or_(Feed.websub_state.is_(None), Feed.websub_state != "denied"),
            )
        )
        for feed in feeds:
            state = feed.websub_state
            renew = _renew_at(feed)
            if state == "active" and renew is not None and now < renew:
                continue
            if (
                state == "pending"
                and feed.websub_requested_at
                and now - feed.websub_requested_at < timedelta(seconds=RETRY_PENDING)
            ):
                continue
            feed.websub_secret = feed.websub_secret or secrets.token_hex(32)
            if state != "active":
                feed.websub_state = "pending"
            feed.websub_requested_at = now
            out.append((feed.id, str(feed.hub_url), feed.websub_topic or feed.url, feed.websub_secret))
    return out


def verify(db: Database, feed_id: int, params: dict[str, str], now: datetime) -> tuple[int, str]:
    """The hub's verification of intent (GET on the callback): (HTTP status, body). Only a subscription we asked
    for, for the topic we asked, is confirmed, by echoing hub.challenge."""
    mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        if feed is None or feed.hub_url is None:
            return 404, "no such subscription"
        if topic != (feed.websub_topic or feed.url):
            return 404, "not the topic of this subscription"
        if mode == "denied":
            feed.websub_state = "denied"
            log.warning(
                "WebSub: hub %s denied the subscription of %s: %s",
                feed.hub_url,
                topic,
                params.get("hub.reason", "no reason given"),
            )
            return 200, ""
        if mode == "subscribe" and feed.websub_state in ("pending", "active"):
            challenge = params.get("hub.challenge", "")
            if not challenge:
                return 400, "hub.challenge missing"
            try:
                lease = max(1, min(int(params.get("hub.lease_seconds") or LEASE_ASKED), 366 * 86400))
            except ValueError:
                lease = LEASE_ASKED
            feed.websub_state = "active"
            feed.websub_requested_at = now
            feed.websub_lease_until = now + timedelta(seconds=lease)
            log.info("WebSub: %s pushes %s for %d s", feed.hub_url, topic, lease)
            return 200, challenge
        if mode == "unsubscribe" and feed.websub_state not in ("pending", "active"):
            return 200, params.get("hub.challenge", "")
        return 404, "not a subscription this server asked for"


def push_secret(db: Database, feed_id: int) -> tuple[bool, str | None]:
    """(is this a feed with an active or pending subscription, its secret)."""
    with db.session() as s:
        feed = s.get(Feed, feed_id)
        if feed is None or feed.hub_url is None or feed.websub_state not in ("pending", "active"):
            return False, None
        return True, feed.websub_secret
