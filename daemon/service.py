"""The long-running service (`wiredesk run`) and its cron-style sibling (`wiredesk poll --once`).

Wiring in one place: APScheduler ticks the poller on the asyncio loop, the HTTP server answers from its own threads,
signals stop both. Each feed update and each article is one transaction, so stopping between awaits never leaves a
half-written update; an in-flight poll gets a grace period and is then cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from daemon import websub
from daemon.app import database, make_fetcher, pipeline_settings, settle_seconds
from daemon.errors import ConfigError, StorageError, WiredeskError
from daemon.feeds import sync_config_feeds
from daemon.fetch.urls import redact
from daemon.pipeline import Pipeline, Progress

log = logging.getLogger("wiredesk")

STOP_GRACE_SECONDS = 7.0  # an in-flight poll may finish within this; SIGTERM must end the process within 10 s


def check_redis(config) -> None:
    """An unreachable redis.url is a setting to fix: one line before any work, not a traceback in the middle."""
    url = config["redis"]["url"]
    if not url:
        return
    from daemon.app import lsh_storage

    lsh_storage(config)  # the package is there and the URL reads as a Redis URL
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise ConfigError(
            f'redis.url: cannot reach Redis ({exc}); start it, fix the URL or set redis.url = ""'
        ) from exc
    finally:
        client.close()


def poll_once(config, all_feeds: bool = False) -> int:
    check_redis(config)
    db = database(config)
    holder = service_holding(db)
    if holder:
        # a second writer beside the service would only wait on its write lock and fail as if the disk were broken
        raise WiredeskError(
            f"wiredesk run ({holder}) is using {db.describe()} and polls its due feeds itself; "
            f"`wiredesk feeds poll URL` has it poll a feed now (or stop it to poll from here)"
        )
    sync_config_feeds(db, config)
    return poll_here(config, db, all_feeds=all_feeds)


def poll_here(config, db, *, all_feeds: bool = False, feeds=None) -> int:
    """Poll the due feeds (every feed with `all_feeds`, or the given Feed rows), process everything and say what
    happened; 1 when every feed tried failed."""
    from daemon.cli.progress import console_progress

    async def go():
        fetcher = make_fetcher(config)
        pool = _parse_pool(config)
        try:
            with console_progress() as progress:
                pipeline = Pipeline(db, fetcher, pipeline_settings(config), progress=progress, parse_executor=pool)
                if feeds is not None:
                    polled = await pipeline.poll(feeds)
                else:
                    polled = await pipeline.poll_due(all_feeds=all_feeds)
            settle_after(pipeline, config, polled)
            return polled
        finally:
            await fetcher.aclose()
            if pool is not None:
                close_pool(pool)

    # What is loaded by now (modules, mappings, the parser's tables) lives until exit: set aside from the garbage
    # collector, whose full passes would otherwise walk all of it again and again during a poll of many feeds.
    gc.freeze()
    report = asyncio.run(go())
    ok = sum(1 for f in report.feeds if f.ok)
    new = sum(f.new_entries for f in report.feeds)
    stored = sum(1 for a in report.articles if a.article_id)
    print(
        f"polled {len(report.feeds)} feeds: {ok} ok, {len(report.failed_feeds)} failed, "
        f"{sum(1 for f in report.feeds if f.not_modified)} not modified; {new} new entries, {stored} new articles"
    )
    for f in report.failed_feeds:
        if f.error_kind != "storage":
            print(f"  {redact(f.error)}", file=sys.stderr)
    if report.storage_errors:
        raise StorageError(
            f"database not writable: {report.storage_errors[0]} (nothing was lost; run again once the disk is fixed)"
        )
    if report.feeds and not ok:
        print(
            f"wiredesk: every feed polled failed ({len(report.feeds)}); `wiredesk feeds list` shows each one's error",
            file=sys.stderr,
        )
        return 1
    return 0


def settle_after(pipeline: Pipeline, config, report, *, stream_time: bool = False) -> None:
    """The settling pass at the end of `poll --once` and `replay` (by ``stream_time``), when settling is on and the
    run stored articles. A database that cannot be written is the run's StorageError; any other failure is one logged
    line (nothing of the pass is stored, the next pass revisits the same stories)."""
    if settle_seconds(config) is None or not any(a.article_id for a in report.articles):
        return
    settle_logged(pipeline, fatal_storage=True, stream_time=stream_time)


def settle_logged(pipeline: Pipeline, *, fatal_storage: bool = False, stream_time: bool = False):
    """pipeline.settle(), its failure logged in one line instead of raised; its report, None when it failed."""
    from daemon.errors import first_line

    try:
        return pipeline.settle(stream_time=stream_time)
    except Exception as exc:
        if isinstance(exc, StorageError) and exc.database_failed:
            if fatal_storage:
                raise StorageError(
                    f"database not writable: cannot store the settled stories: {exc.reason} "
                    "(nothing was lost; run again once the disk is fixed)",
                    exc.reason,
                ) from exc
            log.error("settling the stories failed: the database is not writable: %s", exc.reason)
        else:
            log.error(
                "settling the stories failed, nothing of the pass was stored: %s: %s",
                type(exc).__name__,
                first_line(exc),
            )
            log.debug("settling failed", exc_info=True)
        return None


def _parse_pool(config):
    """Processes for feedparser, which is pure Python and the bulk of a cold poll; None parses in a thread."""
    workers = config["schedule"]["parse_workers"] or (os.cpu_count() or 1)
    if workers <= 1:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    # The fork server imports the parser once and every worker is forked from it ready to parse, instead of each
    # worker importing feedparser itself while the first feeds wait.
    context.set_forkserver_preload(["daemon.parse.feed", "daemon.parse.identity", "daemon.procs"])
    from daemon.procs import die_with_parent

    # workers that outlived a killed poll would keep the fork server and the resource tracker alive too (see procs)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent)


DECIDE_WAIT_SECONDS = 60.0


def close_pool(pool, grace: float = 3.0) -> None:
    """Stop the parse workers and the fork server they came from before this process exits.

    A service manager waits for every process of the service to end, so none should outlive the main one for long;
    workers still busy after `grace` seconds are terminated (the poll is over by now). multiprocessing's resource
    tracker is left to end on its own: it exits as soon as this process closes its end of the tracker's pipe.
    """
    import multiprocessing
    from multiprocessing import forkserver

    pool.shutdown(wait=False, cancel_futures=True)
    workers = list((getattr(pool, "_processes", None) or {}).values())
    deadline = time.monotonic() + grace
    for proc in workers:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
            proc.join(1.0)
    pool.shutdown(wait=True)  # quick now: lets the executor release its queues
    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        try:
            stop()  # closes the fork server's pipe and waits for it to exit
        except (OSError, ChildProcessError):
            pass
    multiprocessing.active_children()  # reap what has ended


# ---- single instance -------------------------------------------------------------------------------------------


def _lock_path(db) -> Path | None:
    """The file beside an SQLite database that `wiredesk run` holds while it runs (None: not a file database)."""
    if db.dialect != "sqlite":
        return None
    target = db.url.database or ":memory:"
    if target == ":memory:":
        return None
    path = Path(target).expanduser()
    return path.with_name(path.name + ".run.lock")


def service_holding(db) -> str | None:
    """Who runs the service on this SQLite database ("pid N on HOST"), or None when no `wiredesk run` holds it (and
    always on PostgreSQL, where workers share the database). Looks without taking the lock for longer than a moment."""
    lock_path = _lock_path(db)
    if lock_path is None or not lock_path.exists():
        return None
    try:
        with open(lock_path) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return fh.read().strip() or "another process"
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


@contextmanager
def instance_lock(db) -> Iterator[None]:
    """One `wiredesk run` per SQLite database: a file lock beside the file, released by the operating system when
    the process dies, so a crash never leaves a stale lock behind. PostgreSQL takes several workers.
    """
    lock_path = _lock_path(db)
    if db.dialect == "sqlite":
        if lock_path is None:
            yield
            return
        path = lock_path.with_name(lock_path.name[: -len(".run.lock")])
        fh = open(lock_path, "a+")  # noqa: SIM115 - held open (and locked) while the service runs
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise WiredeskError(
                f"another wiredesk run ({holder}) is already using {path}; stop it first or point this one at another database"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
    else:
        # PostgreSQL is the store for several workers: they share the feeds through leases (pipeline.due_feeds) and
        # take turns deciding stories (an advisory lock taken by storage.decisions), so no instance lock is taken here
        log.info("sharing %s with any other wiredesk workers", db.describe())
        yield


# ---- systemd notify protocol -------------------------------------------------------------------------------------


class Notifier:
    """sd_notify(3) in a few lines: READY, WATCHDOG and STOPPING for a Type=notify unit; silent elsewhere."""

    def __init__(self):
        self.address = os.environ.get("NOTIFY_SOCKET")
        self.sock = None
        if self.address:
            if self.address.startswith("@"):
                self.address = "\0" + self.address[1:]
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_interval = int(usec) / 2e6 if usec and usec.isdigit() else None

    def send(self, message: str) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(message.encode(), self.address)
        except OSError as exc:
            log.debug("notify socket: %s", exc)


# ---- the service ----------------------------------------------------------------------------------------------


def run(config, host: str | None = None, port: int | None = None) -> int:
    from daemon.serve.http import Server
    from daemon.serve.metrics import Metrics

    check_redis(config)
    db = database(config)
    host = host or config["server"]["host"]
    port = config["server"]["port"] if port is None else port
    # A stop asked for before the event loop takes over the signals (the digest is served from the moment the server
    # starts) is remembered, not fatal: the loop sees it as soon as it runs and stops cleanly.
    early_stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: early_stop.set())
    with instance_lock(db):
        added = sync_config_feeds(db, config)
        if added:
            log.info("added %d feeds from the config file", added)
        metrics = Metrics(db)
        state: dict = {}
        try:
            server = Server(host, port, db, config, metrics, state)
        except OSError as exc:
            raise WiredeskError(f"cannot listen on {host}:{port}: {exc.strerror} (set server.port or --port)") from exc
        server.start()
        log.info("serving the digest on http://%s:%d/ (database %s)", *server.address, db.describe())
        # as in poll_once: the long-lived startup objects stay out of the collector's way (garbage collected first)
        gc.collect()
        gc.freeze()
        try:
            asyncio.run(_serve(config, db, metrics, state, early_stop))
        finally:
            server.stop()
    log.info("stopped")
    return 0


def _schedule_settling(scheduler, config, pipeline: Pipeline, turn: asyncio.Lock, stop: asyncio.Event, metrics) -> None:
    """A settling pass every [engine] settle_minutes (none when 0), in turn with polls and pushes: the engine is the
    pipeline's, and one thing at a time uses it."""
    every = settle_seconds(config)
    if every is None:
        return

    async def settle_tick() -> None:
        if stop.is_set():
            return
        async with turn:
            if stop.is_set():
                return
            report = settle_logged(pipeline)
        if report is not None:
            metrics.record_settle(report)

    scheduler.add_job(settle_tick, "interval", seconds=every, max_instances=1, coalesce=True, id="settle")


def _polled(report, elapsed: float, metrics, state: dict, tick_seconds: float) -> None:
    """What a finished poll of the service leaves: its metrics, the database's state, one line in the log."""
    metrics.record(report, elapsed)
    if report.storage_errors:
        if not state.get("storage_trouble"):
            log.error(
                "database not writable (%s); still serving the digest as stored, retrying every %g s",
                report.storage_errors[0],
                tick_seconds,
            )
        state["storage_trouble"] = True
        return
    if state.pop("storage_trouble", False):
        log.info("database writable again; polling resumed")
    state["last_poll"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if report.feeds or report.articles:
        log.info(
            "poll: %d feeds (%d failed, %d not modified), %d new articles in %.1f s",
            len(report.feeds),
            len(report.failed_feeds),
            sum(f.not_modified for f in report.feeds),
            sum(1 for a in report.articles if a.article_id),
            elapsed,
        )


async def _subscribe(db, fetcher, base_url: str, current: dict) -> None:
    try:
        await websub.subscribe_due(db, fetcher, base_url)
    except Exception as exc:  # a hub's or the database's trouble: polling goes on
        log.warning("WebSub: subscribing failed: %s", exc)
    finally:
        current["subscribe"] = None


async def _cancelled(task: asyncio.Future | None) -> None:
    """Cancel a task that may still run and wait for it to end."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except BaseException:
        pass


async def _serve(config, db, metrics, state, early_stop: threading.Event | None = None) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if early_stop is not None and early_stop.is_set():
        stop.set()
    notifier = Notifier()
    fetcher = make_fetcher(config)
    pool = _parse_pool(config)
    # a service never waits long for other workers before deciding the texts it found (see decide_ready)
    settings = dataclasses.replace(pipeline_settings(config), decide_wait=DECIDE_WAIT_SECONDS)
    pipeline = Pipeline(db, fetcher, settings, progress=Progress(), parse_executor=pool)
    current: dict[str, asyncio.Future | None] = {"poll": None, "subscribe": None}
    # one thing at a time writes through the pipeline: a poll, or a hub's push (which waits for the poll, and back)
    turn = asyncio.Lock()
    base_url = config["server"]["base_url"]

    async def take_push(feed_id: int, body: bytes, headers: dict) -> None:
        async with turn:
            try:
                report = await pipeline.take_push(feed_id, body, headers)
            except Exception as exc:
                log.warning("WebSub: a push for feed %s was not stored: %s", feed_id, exc)
                return
        stored = sum(1 for a in report.articles if a.article_id)
        log.info("WebSub: push for feed %s: %d new articles", feed_id, stored)

    def push(feed_id: int, body: bytes, headers: dict) -> bool:
        # called from the HTTP server's threads; False once the service is stopping
        if stop.is_set() or loop.is_closed():
            return False
        try:
            asyncio.run_coroutine_threadsafe(take_push(feed_id, body, headers), loop)
        except RuntimeError:
            return False
        return True

    state["push"] = push

    async def polled_in_turn():
        async with turn:
            report = await pipeline.poll_due()
        # Hubs are asked beside polling, one round at a time (each hub within websub.HUB_TIMEOUT, a few at once): a
        # hub that never answers holds its own subscription, never the next poll.
        if base_url and current["subscribe"] is None and not stop.is_set():
            current["subscribe"] = asyncio.ensure_future(_subscribe(db, fetcher, base_url, current))
        return report

    async def tick() -> None:
        # The job only starts a poll and returns: a poll longer than tick_seconds is no "skipped job" for the
        # scheduler to warn about at every tick, just one line at INFO.
        if stop.is_set():
            return
        if current["poll"] is not None:
            if not state.get("poll_running_said"):
                state["poll_running_said"] = True
                log.info("a poll is still running; the next one starts when it ends")
            return
        state.pop("poll_running_said", None)
        current["poll"] = asyncio.ensure_future(polled())

    async def polled() -> None:
        started = time.monotonic()
        try:
            report = await polled_in_turn()
        except asyncio.CancelledError:
            return
        except StorageError as exc:
            log.error("poll failed: %s", exc)
            return
        except Exception as exc:  # a bad day for one poll must not end the service
            log.exception("poll failed: %s", exc)
            return
        finally:
            current["poll"] = None
        _polled(report, time.monotonic() - started, metrics, state, config["schedule"]["tick_seconds"])

    scheduler = AsyncIOScheduler(event_loop=loop)
    _schedule_settling(scheduler, config, pipeline, turn, stop, metrics)
    scheduler.add_job(
        tick,
        "interval",
        seconds=config["schedule"]["tick_seconds"],
        next_run_time=datetime.now(timezone.utc),
        max_instances=1,
        coalesce=True,
        id="poll",
    )
    if notifier.watchdog_interval:
        scheduler.add_job(
            lambda: notifier.send("WATCHDOG=1"), "interval", seconds=notifier.watchdog_interval, id="watchdog"
        )
    scheduler.start()
    notifier.send("READY=1")
    notifier.send("STATUS=polling feeds")
    await stop.wait()
    log.info("stopping")
    notifier.send("STOPPING=1")
    scheduler.pause()
    task = current["poll"]
    if task is not None and not task.done():
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_GRACE_SECONDS)
        except (TimeoutError, asyncio.CancelledError, Exception):
            task.cancel()
            try:
                await task
            except BaseException:
                pass
            log.info("abandoned the poll in progress; its unfinished feeds are polled again next start")
    scheduler.shutdown(wait=False)
    await _cancelled(current["subscribe"])
    await fetcher.aclose()
    if pool is not None:
        close_pool(pool)
