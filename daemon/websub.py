"""WebSub (W3C Recommendation, 2018): a feed that names a hub pushes its updates to wiredesk within seconds.

The subscriber's side: subscribe to the hub with a callback on this server and a secret of our own, answer the hub's
verification of intent (hub.challenge), take pushed content only with a valid X-Hub-Signature, renew leases before
they lapse. Pushed content goes through the pipeline like a poll's (Pipeline.take_push); polling goes on at the slow
end of the schedule as a safety net. Subscribing is on when ``[server] base_url`` names where hubs reach this server.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timezone

from storage import Database
from storage import websub as stored
from storage.websub import LEASE_ASKED

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 30.0
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def callback_url(base_url: str, feed_id: int) -> str:
    return f"{base_url.rstrip('/')}/websub/{feed_id}"


def signature_ok(secret: str | None, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature: ``method=hex`` with method sha1, sha256, sha384 or sha512 over the body, keyed by our secret."""
    if not secret or not header or "=" not in header:
        return False
    method, _, given = header.strip().partition("=")
    digest = _DIGESTS.get(method.strip().lower())
    if digest is None:
        return False
    want = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(want, given.strip().lower())


async def subscribe_due(db: Database, fetcher, base_url: str, now: datetime | None = None) -> int:
    """Ask the hubs for the subscriptions that are due (see due_subscriptions); returns how many were asked for.
    A hub that refuses or cannot be reached is logged and asked again later."""
    if not base_url.strip():
        return 0
    now = now or datetime.now(timezone.utc)
    due = stored.due_subscriptions(db, now)
    for feed_id, hub, topic, secret in due:
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": callback_url(base_url, feed_id),
            "hub.secret": secret,
            "hub.lease_seconds": str(LEASE_ASKED),
        }
        try:
            status = await fetcher.post_form(hub, form, timeout=SUBSCRIBE_TIMEOUT)
        except Exception as exc:  # the hub's trouble: polling goes on, the subscription is asked for again later
            log.warning("WebSub: cannot subscribe to %s at %s: %s", topic, hub, exc)
            continue
        if status not in (202, 204, 200):
            log.warning("WebSub: hub %s answered %s to the subscription of %s", hub, status, topic)
        else:
            log.info("WebSub: asked %s to push %s", hub, topic)
    return len(due)


def verify(db: Database, feed_id: int, params: dict[str, str], now: datetime | None = None) -> tuple[int, str]:
    """The hub's verification of intent (GET on the callback): (HTTP status, body); see storage.websub.verify."""
    return stored.verify(db, feed_id, params, now or datetime.now(timezone.utc))


def push_secret(db: Database, feed_id: int) -> tuple[bool, str | None]:
    """(is this a feed with an active or pending subscription, its secret)."""
    return stored.push_secret(db, feed_id)
