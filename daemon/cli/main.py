"""The `wiredesk` command line. Its command names and outputs are a public interface (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import select
import sys
from collections.abc import Sequence
from pathlib import Path

from daemon import __version__
from daemon.cli.output import check_output_path, write_output
from daemon.errors import InputError, WiredeskError

log = logging.getLogger("wiredesk")

DEFAULT_SEEDS = Path("seeds")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line that says where to look."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _like(key: str):
    """An option parsed as a number and held to the same range as the config key it stands in for."""
    from daemon.config import allowed_for

    section, name = key.split(".")
    rule = allowed_for(section, name)
    whole = rule.text.startswith("a whole number")

    def parse(text: str):
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if whole else 'a number'}") from None
        if not rule.test(value):
            raise argparse.ArgumentTypeError(f"{text} is not allowed: it must be {rule.text}")
        return value

    parse.__name__ = "whole number" if whole else "number"
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="wiredesk",
        description="Self-hosted news feed aggregator that groups wire copies and same-event coverage into stories.",
    )
    p.add_argument("--version", action="version", version=f"wiredesk {__version__}")
    p.add_argument("--config", metavar="PATH", help="config file (default ./wiredesk.toml, then the user config dir)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("init", help="create or migrate the database and print where it is")
    run = sub.add_parser("run", help="the service: scheduler + HTTP server, until SIGTERM/SIGINT")
    run.add_argument("--host", help="listen address (default server.host)")
    run.add_argument("--port", type=_like("server.port"), help="listen port (default server.port)")
    poll = sub.add_parser("poll", help="poll feeds")
    poll.add_argument(
        "--once", action="store_true", required=True, help="poll every due feed once, process everything, exit"
    )
    poll.add_argument("--all", action="store_true", help="poll every feed, due or not")

    feeds = sub.add_parser("feeds", help="feed management")
    fsub = feeds.add_subparsers(dest="feeds_command", metavar="ACTION", parser_class=_Parser)
    fsub.required = True
    add = fsub.add_parser("add", help="add a feed by URL")
    add.add_argument("url")
    add.add_argument("--title")
    add.add_argument("--folder")
    add.add_argument(
        "--all", action="store_true", help="a web page's URL: add every feed it links (default: the first)"
    )
    ed = fsub.add_parser("edit", help="change a feed's title, folder, poll interval or article fetching")
    ed.add_argument("url")
    ed.add_argument("--title", help="display title ('' clears it: the feed's own)")
    ed.add_argument("--folder", help="folder ('' clears it)")
    ed.add_argument("--interval", metavar="MINUTES|auto", help="the feed's own poll interval, or auto (adaptive)")
    ed.add_argument(
        "--fetch-articles",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fetch each entry's page for its text (--no-fetch-articles: the feed's own content)",
    )
    fp = fsub.add_parser("poll", help="poll these feeds now, due or not")
    fp.add_argument("urls", nargs="+", metavar="URL")
    rm = fsub.add_parser("remove", help="remove a feed (its stories stay)")
    rm.add_argument("url")
    fl = fsub.add_parser("list", help="feeds with status, last success, last error, next poll")
    fl.add_argument("--json", action="store_true", help="machine-readable output")
    imp = fsub.add_parser("import", help="import feeds from an OPML file (folders kept)")
    imp.add_argument("file")
    exp = fsub.add_parser("export", help="export feeds as OPML 2.0 with folders")
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")

    rp = sub.add_parser("replay", help="replay a fixture corpus offline through the full pipeline (default seeds/)")
    rp.add_argument("dir", nargs="?", default=None, help="fixture folder with a manifest.json (default seeds/)")
    rp.add_argument(
        "--json", action="store_true", help='print {"stories": [{"id", "title", "articles": [{"id", "copy_of"}]}]}'
    )

    cl = sub.add_parser("cluster", help="batch mode over a JSONL corpus: one JSON line per article")
    cl.add_argument("file", help="JSONL, one article a line: id (required), title, text, url, source, published")

    st = sub.add_parser("stories", help="list stories")
    st.add_argument("--limit", type=_like("digest.max_entries"), default=50, help="at most this many stories")
    st.add_argument(
        "--q",
        metavar="WORDS",
        type=_search_words,
        help="only stories with an article whose title or text holds every word",
    )
    st.add_argument("--json", action="store_true")
    one = sub.add_parser("story", help="show one story with its members and why each joined")
    one.add_argument("id", help="story id (or a unique prefix), its urn:uuid, or an article key")
    one.add_argument("--json", action="store_true")

    dg = sub.add_parser("digest", help="render the digest")
    dg.add_argument("--format", choices=["atom", "rss", "json", "html"], default="atom")
    dg.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    dg.add_argument(
        "--min-outlets", type=_like("digest.min_outlets"), help="only stories covered by at least this many outlets"
    )
    dg.add_argument(
        "--days", type=_like("digest.window_days"), help="only stories updated in the last DAYS days (0: no window)"
    )
    dg.add_argument("--folder", action="append", help="only stories with a source in this OPML folder (repeatable)")
    dg.add_argument(
        "--feed", action="append", help="only stories with a source from this feed, by title or URL (repeatable)"
    )
    dg.add_argument("--limit", type=_like("digest.max_entries"), help="at most this many entries")
    dg.add_argument(
        "--q",
        metavar="WORDS",
        type=_search_words,
        help="only stories with an article whose title or text holds every word",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "cluster":
            # no config, no database: the same engine and defaults as the daemon, nothing else
            from daemon.cli.cluster import cluster_jsonl

            return cluster_jsonl(args.file, out=sys.stdout)
        from daemon import config as config_mod
        from daemon.app import setup_logging

        config = config_mod.load(args.config)
        setup_logging(config["log"]["level"])
        handler = COMMANDS[args.command]
        return handler(args, config) or 0
    except WiredeskError as exc:
        print(f"wiredesk: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("wiredesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `wiredesk stories | head` closes our standard output early: that is how the reader says "enough". Any other
        # broken pipe (a worker, a socket) is a failure, and must end with a failing status.
        if not _stdout_closed():
            raise
        devnull = os.open(os.devnull, os.O_WRONLY)  # so that the flush at exit does not fail once more
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _stdout_closed() -> bool:
    """Whether the reading end of standard output has gone away (a pipe with no reader, a hung-up socket)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    try:
        events = poller.poll(0)
    except OSError:
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


# ---- commands -----------------------------------------------------------------------------------------------


def cmd_init(args, config) -> int:
    from daemon.app import database

    db = database(config)
    print(f"database ready: {db.describe()}")
    return 0


def cmd_replay(args, config) -> int:
    from daemon.app import database, make_fetcher, pipeline_settings
    from daemon.cli.progress import console_progress
    from daemon.feeds import add_feed
    from daemon.fetch.client import FixtureTransport
    from daemon.fetch.corpus import load_corpus
    from daemon.pipeline import Pipeline
    from daemon.service import settle_after
    from storage.feeds import feeds_by_url
    from storage.stories import load_stories

    folder = Path(args.dir) if args.dir else _default_seeds()
    corpus = load_corpus(folder)
    db = database(config)
    for f in corpus.feeds:
        add_feed(db, f.url, f.outlet, f.folder)
    routes = corpus.routes()
    feeds = feeds_by_url(db, [f.url for f in corpus.feeds])
    # replay always reads every fixture feed, whatever the schedule says: the corpus is the point
    settings = pipeline_settings(config)

    async def go():
        fetcher = make_fetcher(config, transport=FixtureTransport({u: str(p) for u, p in routes.items()}))
        try:
            with console_progress() as progress:
                pipeline = Pipeline(db, fetcher, settings, progress=progress, external_ids=corpus.ids_by_url())
                polled = await pipeline.poll(feeds)
            settle_after(pipeline, config, polled, stream_time=True)
            return polled
        finally:
            await fetcher.aclose()

    report = asyncio.run(go())
    for failure in report.failed_feeds:
        print(f"wiredesk: skipped feed {corpus.name_of(failure.feed_url)}: {failure.error}", file=sys.stderr)
    for failure in report.failed_articles:
        name = corpus.name_of(failure.url) if failure.url else "?"
        print(f"wiredesk: skipped article {name}: {failure.error}", file=sys.stderr)
    keys = {a.id for a in corpus.articles}
    stories = [s for s in load_stories(db) if any(m.key in keys for m in s.members)]
    stories.sort(key=lambda s: (-len(s.members), s.created_at, s.id))
    if args.json:
        out = {
            "stories": [
                {"id": s.id, "title": s.title, "articles": [{"id": m.key, "copy_of": m.copy_of_key} for m in s.members]}
                for s in stories
            ]
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        from daemon.publish.tables import stories_table

        stories_table(stories, title=f"{len(stories)} stories from {folder}", show_members=True, **_outlet_rule(config))
    return 0


def _default_seeds() -> Path:
    if DEFAULT_SEEDS.is_dir():
        return DEFAULT_SEEDS
    # installed elsewhere than the checkout: the seeds beside the package
    here = Path(__file__).resolve().parents[2] / "seeds"
    if here.is_dir():
        return here
    raise InputError("replay: no seeds/ folder here; give the fixture folder (wiredesk replay PATH)")


def _search_words(value: str) -> str:
    from storage.stories import search_words

    if len(value) > 200 or not search_words(value):
        raise argparse.ArgumentTypeError("give one to 200 characters with at least one word (letters or digits)")
    return value


def cmd_stories(args, config) -> int:
    from daemon.app import database
    from daemon.publish.tables import stories_table
    from storage.stories import load_stories

    db = database(config)
    if args.q:
        from storage.stories import story_ids_by_update

        stories = load_stories(db, story_ids_by_update(db, search=args.q)[: args.limit])
    else:
        stories = load_stories(db, limit=args.limit)
    if args.json:
        print(json.dumps([_story_json(s, config) for s in stories], indent=2, ensure_ascii=False))
    else:
        stories_table(
            stories,
            title=f"{len(stories)} stories matching {args.q!r}" if args.q else f"{len(stories)} most recent stories",
            **_outlet_rule(config),
        )
    return 0


def cmd_story(args, config) -> int:
    from daemon.app import database
    from daemon.publish.tables import story_detail
    from storage.stories import find_story

    story = find_story(database(config), args.id)
    if story is None:
        raise InputError(f"story {args.id!r} not found (wiredesk stories lists them)")
    if args.json:
        print(json.dumps(_story_json(story, config, evidence=True), indent=2, ensure_ascii=False))
    else:
        story_detail(story, **_outlet_rule(config))
    return 0


def _changes_json(s) -> dict:
    """A story's merges and moves (settling) for `wiredesk story --json`, and the id it was asked by if merged."""
    from daemon.publish.tables import change_words, why_changed

    out: dict = {}
    if s.alias is not None:
        out["merged"] = {"id": s.alias, "into": s.id}
    out["changes"] = [
        {
            "kind": c.kind,
            "at": c.at.isoformat(),
            "from_story": c.from_story,
            "to_story": c.to_story,
            "articles": list(c.article_keys or (str(a) for a in c.article_ids)),
            "score": round(c.score, 4),
            "what": change_words(c, s.id),
            "why": why_changed(c),
            "evidence": c.evidence,
        }
        for c in s.changes
    ]
    return out


def _outlet_rule(config) -> dict:
    """What the tables need to count and name outlets as the digest does: [outlets] and the preferred outlets."""
    return {"preferred": tuple(config["digest"]["preferred_outlets"]), "outlets": getattr(config, "outlets", None)}


def _story_json(s, config, evidence: bool = False) -> dict:
    from daemon.publish.select import story_outlets

    return {
        "id": s.id,
        "uuid": s.uuid,
        "title": s.title,
        "published": s.published.isoformat(),
        "updated": s.updated.isoformat(),
        "outlets": story_outlets(s, **_outlet_rule(config)),
        "articles": [
            {
                "id": m.key,
                "title": m.title,
                "url": m.url,
                "source": m.source,
                "feeds": list(m.feeds),
                "published": m.published.isoformat() if m.published else None,
                "copy_of": m.copy_of_key,
                "score": round(m.score, 4),
                **({"evidence": m.evidence} if evidence else {}),
            }
            for m in s.members
        ],
        **(_changes_json(s) if evidence else {}),
    }


def cmd_digest(args, config) -> int:
    from daemon.app import database
    from daemon.publish.select import query_from_config, render_digest

    # the same query rules as the server's: config defaults, the given options instead, the configured cap
    query = query_from_config(
        config,
        min_outlets=args.min_outlets,
        window_days=args.days,
        folders=args.folder,
        feeds=args.feed,
        limit=args.limit,
        search=args.q,
    )
    if args.output:
        check_output_path(args.output)
    body, _ctype = render_digest(database(config), config, args.format, query)
    write_output(body, args.output)
    return 0


def cmd_feeds(args, config) -> int:
    from daemon.cli import feeds as feeds_mod

    return feeds_mod.command(args, config)


def cmd_poll(args, config) -> int:
    from daemon.service import poll_once

    return poll_once(config, all_feeds=args.all)


def cmd_run(args, config) -> int:
    from daemon.service import run

    return run(config, host=args.host, port=args.port)


COMMANDS = {
    "init": cmd_init,
    "run": cmd_run,
    "poll": cmd_poll,
    "feeds": cmd_feeds,
    "replay": cmd_replay,
    "stories": cmd_stories,
    "story": cmd_story,
    "digest": cmd_digest,
}
