"""The one pipeline that `run`, `poll --once` and `replay` share.

Two stages, each safe to interrupt at any point:

1. **Feeds** — fetch every due feed (concurrently), parse it (in worker processes when there are cores to spare),
   decide its update (``feed_update``: a pure function of the stored feed, the fetch, the parsed feed, the known entries
   and the time) and have storage write it with the feed's new state (validators, schedule, error) in one
   transaction: a feed's update is never half-written. Several feeds share a transaction; when one fails, its feeds
   are retried one per transaction. A new entry is stored as *pending*.
2. **Articles** — for every pending entry: fetch its page, extract the body (falling back to the feed's own content),
   then, in publication order, fingerprint it and assign it to a story; the article and its story membership are
   written in one transaction. A crash between the stages leaves pending entries that the next run finishes.

Only the source of bytes differs between the daemon (HTTP) and replay (fixture files served by a transport).
``records`` holds what the stages pass and report, ``feed_update`` the feed-update decider, ``run`` the Pipeline.
"""

from daemon.pipeline.feed_update import decide_feed_update
from daemon.pipeline.records import (
    ArticleOutcome,
    FeedOutcome,
    Fetched,
    PipelineSettings,
    PollReport,
    Progress,
    describe_failure,
)
from daemon.pipeline.run import (
    CLAIM_CHUNK,
    DECIDE_BATCH,
    WRITE_BATCH,
    EngineState,
    Pipeline,
    new_story_id,
    utcnow,
)

__all__ = [
    "CLAIM_CHUNK",
    "DECIDE_BATCH",
    "WRITE_BATCH",
    "ArticleOutcome",
    "EngineState",
    "FeedOutcome",
    "Fetched",
    "Pipeline",
    "PipelineSettings",
    "PollReport",
    "Progress",
    "decide_feed_update",
    "describe_failure",
    "new_story_id",
    "utcnow",
]
