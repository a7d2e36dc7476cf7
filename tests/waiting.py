"""Waiting on what a test can observe (a row, a file, a process), never on how long the machine takes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

POLL_SECONDS = 0.05  # how often the condition is looked at


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Look at ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def expire_leases(url: str) -> int:
    """Move every feed lease into the past, as if its time had run out: what waiting ``lease_seconds`` would do,
    without the wait. Returns how many leases there were."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            past = datetime.now(timezone.utc) - timedelta(days=1)
            return c.execute(sa.text("update feeds set lease_until = :past where lease_until is not null"),
                             {"past": past}).rowcount
    finally:
        engine.dispose()
