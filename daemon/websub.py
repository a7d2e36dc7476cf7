"""WebSub (W3C Recommendation, 2018): a feed that names a hub pushes its updates to wiredesk within seconds.

The subscriber's side: subscribe to the hub with a callback on this server and a secret of our own, answer the hub's
verification of intent (hub.challenge), take pushed content only with a valid X-Hub-Signature, renew leases before
they lapse. Pushed content goes through the pipeline like a poll's (Pipeline.take_push); polling goes on at the slow
end of the schedule as a safety net. Subscribing is on when ``[server] base_url`` names where hubs reach this server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit

from storage import Database
from storage import websub as stored
from storage.websub import LEASE_ASKED

log = logging.getLogger(__name__)

# A hub is asked with a short deadline of its own, a few at a time, beside polling: a hub that never answers costs
# its own subscription and nothing else.
HUB_TIMEOUT = 10.0
HUB_CONCURRENCY = 4
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def callback_url(base_url: str, feed_id: int, token: str) -> str:
    """Where the hub verifies the request and pushes: the feed's id and the request's one-time token."""
    return f"{base_url.rstrip('/')}/websub/{feed_id}/{token}"


def callback_path(path: str) -> tuple[int, str | None] | None:
    """(feed id, token or None) of a callback path, /websub/<id> or /websub/<id>/<token>; None for anything else."""
    parts = path[len("/websub/") :].split("/") if path.startswith("/websub/") else []
    if not 1 <= len(parts) <= 2 or not (parts[0].isascii() and parts[0].isdigit()) or len(parts[0]) > 18:
        return None
    token = parts[1] if len(parts) == 2 else None
    if token is not None and not (0 < len(token) <= 64 and token.isascii()):
        return None
    return int(parts[0]), token


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
    """Ask the hubs for the subscriptions that are due (see due_subscriptions), HUB_CONCURRENCY at a time, each
    within HUB_TIMEOUT; returns how many were asked for. A hub that refuses, cannot be reached or does not answer in
    time is logged and asked again later."""
    if not base_url.strip():
        return 0
    now = now or datetime.now(timezone.utc)
    due = stored.due_subscriptions(db, now)
    gate = asyncio.Semaphore(HUB_CONCURRENCY)

    async def ask(feed_id: int, hub: str, topic: str, secret: str, token: str) -> None:
        form = {
            "hub.mode": "subscribe",
            "hub.topic": topic,
            "hub.callback": callback_url(base_url, feed_id, token),
            "hub.lease_seconds": str(LEASE_ASKED),
        }
        if signs(hub):
            form["hub.secret"] = secret
        else:
            log.info(
                "WebSub: hub %s is plain http: asked without a secret, so its pushes only make %s due for a poll",
                hub,
                topic,
            )
        async with gate:
            try:
                status = await fetcher.post_form(hub, form, timeout=HUB_TIMEOUT)
            except Exception as exc:  # the hub's trouble: polling goes on, the subscription is asked for again later
                log.warning("WebSub: cannot subscribe to %s at %s: %s", topic, hub, exc)
                return
        if status not in (202, 204, 200):
            log.warning("WebSub: hub %s answered %s to the subscription of %s", hub, status, topic)
        else:
            log.info("WebSub: asked %s to push %s", hub, topic)

    await asyncio.gather(*(ask(*request) for request in due))
    return len(due)


def verify(
    db: Database, feed_id: int, token: str | None, params: dict[str, str], now: datetime | None = None
) -> tuple[int, str]:
    """The hub's verification of intent (GET on the callback): (HTTP status, body); see storage.websub.verify."""
    return stored.verify(db, feed_id, token, params, now or datetime.now(timezone.utc))


def signs(hub: str) -> bool:
    """Whether a subscription at this hub gets a secret (and its pushes are read): an https hub, or an http one on
    this machine (a loopback address, or localhost). A secret sent in clear over a network is no secret: a plain
    http hub elsewhere is asked without one, and its pushes only make the feed due."""
    try:
        parts = urlsplit(hub)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def push_secret(db: Database, feed_id: int) -> tuple[bool, str | None]:
    """(is this a feed with an active or pending subscription, its secret: None for a hub that does not sign)."""
    known, secret, hub = stored.push_secret(db, feed_id)
    return known, secret if hub and signs(hub) else None


def poll_soon(db: Database, feed_id: int, now: datetime | None = None) -> None:
    """A push from a hub that does not sign: a signal that the feed changed, polled from its own URL next."""
    stored.make_due(db, feed_id, now or datetime.now(timezone.utc))
