"""A loopback feed farm: many RSS feeds with article pages, ETag and Last-Modified, for tests and benchmarks.

Bodies are built once up front so that the farm is never the bottleneck of what it measures. Run it in-process
(``Farm(...).start()``) or as its own process (``python tests/farm.py --feeds 1000``), which prints its base URL.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

WORDS = [
    "government",
    "minister",
    "council",
    "report",
    "city",
    "market",
    "energy",
    "river",
    "harbour",
    "bridge",
    "railway",
    "school",
    "hospital",
    "court",
    "election",
    "budget",
    "festival",
    "museum",
    "storm",
    "harvest",
    "factory",
    "union",
    "strike",
    "police",
    "mayor",
    "village",
    "port",
    "airline",
    "bank",
    "science",
    "library",
    "trial",
    "treaty",
    "border",
    "summit",
    "drought",
    "flood",
    "vaccine",
    "theatre",
    "stadium",
    "league",
    "orchestra",
]

# News-like English: each entry reports one of a few events happening around its publication time, so the
# farm's entries form real stories (several outlets, different sentences, sometimes a wire copy) for the engine.
_PLACE = (
    ["Port", "North", "Kestrel", "Dun", "Vale", "Oris", "Hal", "Bren", "Calder", "Ash"],
    ["ford", "haven", "more", "ton", "bury", "wick", "field", "bridge", "mouth", "stead"],
)
_FIRST = ["Maria", "Tomas", "Aiko", "Samuel", "Lena", "Rafael", "Nadia", "Piotr", "Grace", "Ivan", "Omar", "Elena"]
_LAST = ["Lopez", "Berg", "Tanaka", "Okafor", "Fischer", "Duarte", "Haddad", "Nowak", "Mensah", "Petrov", "Sato"]
_TOPICS = [
    ("flood", ["river", "levee", "rain", "evacuation", "homes", "rescue", "water", "villages"]),
    ("strike", ["workers", "union", "wages", "factory", "talks", "walkout", "management", "contract"]),
    ("election", ["votes", "ballots", "candidate", "turnout", "polling", "coalition", "parliament", "count"]),
    ("fire", ["blaze", "firefighters", "warehouse", "smoke", "damage", "investigators", "alarm", "crews"]),
    ("summit", ["leaders", "trade", "agreement", "talks", "delegation", "tariffs", "ministers", "treaty"]),
    ("trial", ["court", "judge", "jury", "verdict", "defence", "prosecutors", "witness", "appeal"]),
]
EVENTS_PER_SLOT = 12  # events happening in each 90-minute slot of the farm's timeline


def event(seed: int, index: int) -> dict:
    rng = random.Random(seed * 1_000_003 + index)
    topic, words = rng.choice(_TOPICS)
    words = rng.sample(words, 4) + rng.sample(WORDS, 4)  # events on one topic differ in what they speak of
    return {
        "topic": topic,
        "words": words,
        "place": rng.choice(_PLACE[0]) + rng.choice(_PLACE[1]),
        "person": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
        "number": rng.randint(12, 900),
        "year": rng.choice([2019, 2020, 2021, 2022, 2023]),
    }


def sentence(rng: random.Random, ev: dict) -> str:
    w = lambda: rng.choice(ev["words"])  # noqa: E731
    g = lambda: rng.choice(WORDS)  # noqa: E731
    topic, place, person, number, year = ev["topic"], ev["place"], ev["person"], ev["number"], ev["year"]
    return rng.choice(
        [
            f"The {topic} in {place} has affected at least {number} people, officials said on Saturday.",
            f"{person}, who leads the response in {place}, said the {w()} would take weeks.",
            f"Residents of {place} described the {w()} and the {w()} as the worst since {year}.",
            f"According to {person}, the {w()} and the {w()} were not expected this early.",
            f"Local authorities in {place} asked for help with the {w()} on Saturday morning.",
            f"The number of {w()} reported in {place} rose to {number} by the evening.",
            f"Critics said the {w()} in {place} had been ignored for years by the authorities.",
            f"{person} told reporters that the {w()} was under control but warned of more {w()}.",
            f"In {place}, the {g()} and the {g()} were closed while the {w()} went on.",
            f"Officials in {place} said the {g()} would review the {w()} next week.",
            f"The {g()} near the {g()} reported {rng.randint(2, 99)} cases linked to the {w()}.",
            f"A spokesman for the {g()} said the {g()} had not been consulted about the {w()}.",
            f"Many in {place} said the {g()} and the {g()} mattered more than the {w()}.",
            f"{person} visited the {g()} on Saturday and spoke about the {w()} and the {g()}.",
        ]
    )


def news(rng: random.Random, ev: dict, n_words: int) -> str:
    out, count = [], 0
    while count < n_words:
        out.append(sentence(rng, ev))
        count += len(out[-1].split())
    return " ".join(out)


def paragraph(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


class Farm:
    def __init__(
        self,
        feeds: int = 10,
        entries: int = 20,
        seed: int = 1,
        with_pages: bool = True,
        entry_bytes: int = 1000,
        page_delay: float = 0.0,
        visible: int | None = None,
    ):
        self.n_feeds, self.n_entries = feeds, entries
        self.page_delay = page_delay  # seconds each article page takes: a slower site, for tests that need time
        self.visible = entries if visible is None else visible  # entries each feed lists now (grow() adds more)
        self.items: dict[int, list[str]] = {}
        self.rng = random.Random(seed)
        self.seed = seed
        self.with_pages = with_pages
        self.entry_bytes = entry_bytes
        self.hits = 0
        self.requests: dict[str, int] = {}  # per path, for tests that check who fetched what
        self.lock = threading.Lock()
        self.not_modified = 0
        self.httpd: ThreadingHTTPServer | None = None
        self.base = ""
        self.last_modified = format_datetime(datetime(2024, 4, 13, 12, 0, tzinfo=timezone.utc), usegmt=True)
        self.feeds: dict[str, bytes] = {}
        self.pages: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}

    def _build(self) -> None:
        start = datetime(2024, 4, 13, tzinfo=timezone.utc)
        written: dict[int, list[str]] = {}  # event -> summaries so far, for wire copies
        for f in range(self.n_feeds):
            items = []
            for e in range(self.n_entries):
                minutes = f * 7 + e * 13
                k = (minutes // 90) * EVENTS_PER_SLOT + self.rng.randrange(EVENTS_PER_SLOT)
                ev = event(self.seed, k)
                words = max(10, self.entry_bytes // 7)
                earlier = written.setdefault(k, [])
                if earlier and self.rng.random() < 0.1:
                    summary, body = self.rng.choice(earlier)  # a wire copy of an earlier write-up
                    summary, body = summary + " (END)", body + "<p>(END)</p>"
                else:
                    summary = news(self.rng, ev, words)
                    body = (
                        "".join(f"<p>{escape(news(self.rng, ev, 40))}</p>" for _ in range(5)) if self.with_pages else ""
                    )
                    earlier.append((summary, body))
                link = f"{self.base}/page/{f}/{e}.html"
                when = format_datetime(start + timedelta(minutes=minutes), usegmt=True)
                title = f"{ev['topic'].title()} in {ev['place']}: {ev['person']} speaks"
                items.append(
                    f"<item><title>Feed {f} story {e}: {escape(title)}</title><link>{link}</link>"
                    f'<guid isPermaLink="false">farm-{f}-{e}</guid><pubDate>{when}</pubDate>'
                    f"<description>{escape(summary)}</description></item>"
                )
                if self.with_pages:
                    self.pages[f"/page/{f}/{e}.html"] = (
                        f"<html><head><title>Story {f}-{e}</title></head><body><nav><a href='/'>Home</a></nav>"
                        f"<article><h1>Story {f}-{e}</h1>{body}</article><footer>Farm news</footer></body></html>"
                    ).encode()
            self.items[f] = items
        self._render()

    def _render(self) -> None:
        # Last-Modified moves with the content, or a conditional GET would miss the new entries
        self.last_modified = format_datetime(
            datetime(2024, 4, 13, 12, 0, tzinfo=timezone.utc) + timedelta(minutes=self.visible), usegmt=True
        )
        for f, items in self.items.items():
            xml = (
                f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Farm feed {f}</title>'
                f"<link>{self.base}/</link><description>loopback farm</description>{''.join(items[: self.visible])}"
                "</channel></rss>"
            ).encode()
            path = f"/feed/{f}.xml"
            self.feeds[path] = xml
            self.etags[path] = '"' + hashlib.sha1(xml).hexdigest() + '"'

    def grow(self, n: int = 1) -> None:
        """Every feed lists n more of its entries (new ETags): the next poll has new work."""
        self.visible = min(self.n_entries, self.visible + n)
        self._render()

    def urls(self) -> list[str]:
        return [f"{self.base}/feed/{f}.xml" for f in range(self.n_feeds)]

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Farm:
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes; with Nagle on, each response would wait ~40 ms for an ACK
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                farm.hits += 1
                path = self.path.split("?", 1)[0]
                with farm.lock:
                    farm.requests[path] = farm.requests.get(path, 0) + 1
                if path in farm.feeds:
                    etag = farm.etags[path]
                    if (
                        self.headers.get("If-None-Match") == etag
                        or self.headers.get("If-Modified-Since") == farm.last_modified
                    ):
                        farm.not_modified += 1
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self._send(
                        farm.feeds[path], "application/rss+xml", {"ETag": etag, "Last-Modified": farm.last_modified}
                    )
                elif path in farm.pages:
                    if farm.page_delay:
                        time.sleep(farm.page_delay)
                    self._send(farm.pages[path], "text/html; charset=utf-8", {})
                else:
                    self._send(b"not found", "text/plain", {}, status=404)

            def _send(self, body, ctype, headers, status=200):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.request_queue_size = 1024
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self._build()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()


def main() -> int:
    p = argparse.ArgumentParser(description="serve a loopback feed farm until killed")
    p.add_argument("--feeds", type=int, default=1000)
    p.add_argument("--entries", type=int, default=20)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--no-pages", action="store_true")
    args = p.parse_args()
    farm = Farm(args.feeds, args.entries, with_pages=not args.no_pages).start(port=args.port)
    print(farm.base, flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
