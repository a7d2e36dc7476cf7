"""Wiring: config → database, fetcher, pipeline. One small place, shared by every command."""

from __future__ import annotations

import logging
import sys
from typing import Any

from daemon.config import SCHEMA, Config, data_dir
from daemon.fetch.client import Fetcher, Limits
from daemon.fetch.urls import redact
from daemon.pipeline import PipelineSettings
from daemon.schedule import ScheduleSettings
from storage import Database, open_database

log = logging.getLogger("wiredesk")


class _Redacted(logging.Filter):
    """Credentials in URLs (user:password@) never reach a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "@" in message:
            record.msg, record.args = redact(message), None
        return True


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_Redacted())
    # one line per event from us; the libraries' chatter only when debugging
    for noisy in ("httpx", "httpcore", "alembic", "trafilatura", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)


def database(config: Config) -> Database:
    from daemon.config import default_database_url

    # the default location is created on first use; a configured path must name an existing folder
    return open_database(config.database_url, create_folder=config.database_url == default_database_url())


def fetch_limits(config: Config) -> Limits:
    f = config["fetch"]
    return Limits(
        timeout=f["timeout"],
        connect_timeout=f["connect_timeout"],
        max_bytes=f["max_bytes"],
        max_redirects=f["max_redirects"],
        max_connections=f["max_connections"],
        max_per_host=f["max_per_host"],
    )


def make_fetcher(config: Config, transport=None) -> Fetcher:
    f = config["fetch"]
    return Fetcher(
        fetch_limits(config),
        user_agent=f["user_agent"] or None,  # None: the fetcher's own (daemon.fetch.client.default_user_agent)
        transport=transport,
        allow_networks=tuple(f["allow_networks"]),
    )


def pipeline_settings(config: Config) -> PipelineSettings:
    s = config["schedule"]
    return PipelineSettings(
        fetch_articles=config["fetch"]["fetch_articles"],
        max_entries_per_feed=config["fetch"]["max_entries_per_feed"],
        max_article_chars=config["fetch"]["max_article_chars"],
        lease_seconds=s["lease_seconds"],
        lsh_storage=lsh_storage(config),
        embedder=semantic_embedder(config),
        schedule=ScheduleSettings(
            interval=s["interval_minutes"] * 60.0,
            min_interval=s["min_interval_minutes"] * 60.0,
            max_interval=s["max_interval_minutes"] * 60.0,
            backoff_base=s["backoff_minutes"] * 60.0,
            backoff_max=s["max_backoff_minutes"] * 60.0,
        ),
    )


def settle_seconds(config: Config) -> float | None:
    """Seconds between settling passes of the service ([engine] settle_minutes); None: settling is off, there and
    at the end of `poll --once` and `replay`."""
    minutes = config["engine"]["settle_minutes"]
    return minutes * 60.0 if minutes > 0 else None


# One load per model folder and process; None where it could not be loaded (said once).
_embedders: dict[tuple[str, str] | None, object] = {}  # None: the off switch, said once


def semantic_embedder(config: Config | None = None, report=None):
    """The sentence-embedding model the engine uses for its semantic signal, or None.

    None when ``[engine] semantic = false``, or when the model is missing or damaged: then one line (through
    `report`, else the log) says why and that stories use the lexical signals only. Nothing stored depends on
    the model being there: fingerprints stored with a vector keep it, those stored without one stay so.
    """
    engine: dict[str, Any] = (
        config["engine"] if config is not None else {k: default for k, (_, default) in SCHEMA["engine"].items()}
    )
    if not engine["semantic"]:
        if None not in _embedders:
            _embedders[None] = None
            log.info("semantic signal off ([engine] semantic = false): stories use the lexical signals only")
        return None
    key = (engine["model_dir"], engine["precision"])
    if key not in _embedders:
        from daemon.engine.embed import ModelError, load_embedder

        try:
            _embedders[key] = load_embedder(
                key[0] or None,
                precision=key[1],
                cache_dir=data_dir() / "models",
                report=report or log.warning,
            )
        except ModelError as exc:
            _embedders[key] = None
            why = str(exc).removeprefix("sentence-embedding model: ")
            (report or log.warning)(f"semantic model not available ({why}): stories use the lexical signals only")
    return _embedders[key]


def lsh_storage(config: Config) -> dict | None:
    """datasketch's storage_config for the copy and story indexes in Redis, keyed by the database so that two
    deployments sharing one Redis never mix their indexes; None keeps the indexes in memory."""
    url = config["redis"]["url"]
    if not url:
        return None
    from daemon.errors import ConfigError

    try:
        from redis.connection import parse_url
    except ImportError as exc:
        raise ConfigError("redis.url needs the redis package: pip install 'wiredesk[redis]'") from exc

    try:
        params = parse_url(url)
    except ValueError as exc:
        raise ConfigError(f"redis.url {url!r} is not a Redis URL (e.g. redis://127.0.0.1:6379/0): {exc}") from exc
    return {"type": "redis", "basename": index_basename(config.database_url), "redis": params}


def index_basename(database_url: str) -> bytes:
    """The prefix of every Redis key of the indexes that belong to this database."""
    import hashlib

    return f"wiredesk:{hashlib.sha1(database_url.encode()).hexdigest()[:12]}:".encode()
