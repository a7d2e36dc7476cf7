"""Load on the digest endpoints of `wiredesk run` while it polls: requests/s and p50/p99 latency per endpoint.

    .venv/bin/python benchmarks/digest_load.py ../shared/datasets/ecbplus-dev.jsonl [--seconds 30] [--threads 8]

What it does, all on loopback and in a temporary folder (nothing is written into the repository):

1. turns the JSONL corpus into a fixture corpus (manifest.json, one RSS feed per outlet, one HTML page per article;
   the articles are dealt round-robin to a dozen made-up outlets, so that stories have several sources) and
   replays most of it with `wiredesk replay`, so the database holds the stories of the corpus;
2. serves the held-back articles (every third by default) from a loopback feed farm whose article pages answer
   slowly, like remote sites, so that the first poll of `wiredesk run` fetches, extracts and clusters them for the
   whole measurement: the digest changes under the load and the cached documents are rendered again and again;
3. starts `wiredesk run` over that database and the farm, and a second process that requests the digest endpoints
   for --seconds with --threads keep-alive connections;
4. prints a table per endpoint, and what the poll did meanwhile (read from /metrics).

The corpus is read from the path given; it is never copied into the project. `corpus` writes only the fixture
corpus (for `wiredesk replay`, e.g. to validate a digest of many stories):

    .venv/bin/python benchmarks/digest_load.py corpus ../shared/datasets/ecbplus-dev.jsonl OUT_DIR
"""

from __future__ import annotations

import argparse
import html
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
OUTLETS = [
    ("Harbor Wire", "World"),
    ("Daily Meridian", "World"),
    ("The Northern Ledger", "Local"),
    ("Capital Courier", "Politics"),
    ("Evening Signal", "Local"),
    ("Pacific Dispatch", "World"),
    ("Market Bulletin", "Business"),
    ("The Civic Review", "Politics"),
    ("Riverside Times", "Local"),
    ("Global Post Desk", "World"),
    ("Frontier Herald", "Business"),
    ("Metro Observer", "Local"),
]
ENDPOINTS = [
    ("/digest.atom", {}),
    ("/digest.rss", {}),
    ("/digest.json", {}),
    ("/", {}),
    ("/digest.atom?min_outlets=2&limit=20", {}),
    ("/digest.atom", {"If-None-Match": "ETAG"}),  # a feed reader polling: 304 until the digest changes
    ("/healthz", {}),
]


# ---- the corpus as feeds and pages -----------------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict]:
    articles = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                a = json.loads(line)
                articles.append({"id": str(a["id"]), "title": a.get("title") or "", "text": a.get("text") or ""})
    return articles


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def title_of(article: dict) -> str:
    title = " ".join(article["title"].split()) or paragraphs(article["text"])[0][:100]
    return title if len(title) <= 140 else title[:140].rsplit(" ", 1)[0] + "…"


def page_html(article: dict) -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs(article["text"]))
    title = html.escape(title_of(article))
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/world'>World</a></nav><article><h1>{title}</h1>{body}</article>"
        "<footer>Copyright. All rights reserved.</footer></body></html>"
    )


def feed_rss(outlet: str, site: str, items: list[tuple[dict, str]]) -> str:
    out = [
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(outlet)}</title>'
        f"<link>{escape(site)}</link><description>{escape(outlet)} news</description>"
    ]
    for article, url in items:
        first = paragraphs(article["text"])[0] if paragraphs(article["text"]) else ""
        out.append(
            f"<item><title>{escape(title_of(article))}</title><link>{escape(url)}</link>"
            f"<guid>{escape(url)}</guid><description>{escape(first[:300])}</description></item>"
        )
    out.append("</channel></rss>")
    return "".join(out)


def deal(articles: list[dict]) -> dict[str, list[dict]]:
    by_outlet: dict[str, list[dict]] = {name: [] for name, _ in OUTLETS}
    for i, article in enumerate(articles):
        by_outlet[OUTLETS[i % len(OUTLETS)][0]].append(article)
    return by_outlet


def write_corpus(articles: list[dict], out: Path) -> Path:
    """A fixture corpus that `wiredesk replay` reads: manifest.json, feeds/*.xml, pages/*.html."""
    (out / "feeds").mkdir(parents=True, exist_ok=True)
    (out / "pages").mkdir(exist_ok=True)
    manifest: dict = {"feeds": [], "articles": []}
    folders = dict(OUTLETS)
    for outlet, members in deal(articles).items():
        if not members:
            continue
        site = f"https://{slug(outlet)}.example/"
        items = []
        for a in members:
            url = f"{site}news/{slug(a['id'])}.html"
            (out / "pages" / f"{slug(a['id'])}.html").write_text(page_html(a), encoding="utf-8")
            manifest["articles"].append({"id": a["id"], "url": url, "page": f"pages/{slug(a['id'])}.html"})
            items.append((a, url))
        (out / "feeds" / f"{slug(outlet)}.xml").write_text(feed_rss(outlet, site, items), encoding="utf-8")
        manifest["feeds"].append(
            {"outlet": outlet, "url": f"{site}rss.xml", "file": f"feeds/{slug(outlet)}.xml", "folder": folders[outlet]}
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return out


class Farm:
    """The held-back articles as live feeds on loopback; article pages answer after ``page_delay`` seconds."""

    def __init__(self, articles: list[dict], page_delay: float):
        self.pages: dict[str, bytes] = {}
        self.feeds: dict[str, bytes] = {}
        self.page_delay = page_delay
        self.page_requests = 0
        self.last_page_at = 0.0
        farm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path in farm.pages:
                    time.sleep(farm.page_delay)
                    farm.page_requests += 1
                    farm.last_page_at = time.monotonic()
                    body, ctype = farm.pages[self.path], "text/html; charset=utf-8"
                elif self.path in farm.feeds:
                    body, ctype = farm.feeds[self.path], "application/rss+xml"
                else:
                    body, ctype = b"not found", "text/plain"
                self.send_response(200 if ctype != "text/plain" else 404)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Quiet(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # the service hangs up on stop; a farm has nothing to report about it

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        for outlet, members in deal(articles).items():
            if not members:
                continue
            items = []
            for a in members:
                path = f"/{slug(outlet)}/{slug(a['id'])}.html"
                self.pages[path] = page_html(a).encode()
                items.append((a, self.base + path))
            self.feeds[f"/{slug(outlet)}.xml"] = feed_rss(outlet, self.base + "/", items).encode()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def feed_urls(self) -> list[tuple[str, str, str]]:
        folders = dict(OUTLETS)
        names = {f"/{slug(o)}.xml": o for o, _ in OUTLETS}
        return [(self.base + path, names[path], folders[names[path]]) for path in self.feeds]

    def stop(self) -> None:
        self.httpd.shutdown()


# ---- the load generator (a separate process) -------------------------------------------------------------------


def load_worker(host: str, port: int, seconds: float, threads: int) -> dict:
    """Request every endpoint in turn from ``threads`` keep-alive connections; latencies per endpoint."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/digest.atom")
    resp = conn.getresponse()
    resp.read()
    etag = resp.getheader("ETag", "")
    conn.close()

    names = [path + (" (If-None-Match)" if "If-None-Match" in hdrs else "") for path, hdrs in ENDPOINTS]
    results = {name: {"latencies": [], "errors": 0, "bytes": 0, "statuses": {}} for name in names}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def run(offset: int) -> None:
        local = {name: ([], [0], [0], {}) for name in names}
        c = http.client.HTTPConnection(host, port, timeout=30)
        known_etag = etag
        i = offset
        while time.monotonic() < stop_at:
            path, hdrs = ENDPOINTS[i % len(ENDPOINTS)]
            name = names[i % len(ENDPOINTS)]
            i += 1
            headers = {k: (known_etag if v == "ETAG" else v) for k, v in hdrs.items()}
            started = time.perf_counter()
            try:
                c.request("GET", path, headers=headers)
                r = c.getresponse()
                body = r.read()
            except (OSError, http.client.HTTPException):
                local[name][1][0] += 1
                c.close()
                c = http.client.HTTPConnection(host, port, timeout=30)
                continue
            if "If-None-Match" in headers and r.status == 200:
                known_etag = r.getheader("ETag", known_etag)  # as a feed reader does: keep the newest validator
            local[name][0].append(time.perf_counter() - started)
            local[name][2][0] += len(body)
            local[name][3][r.status] = local[name][3].get(r.status, 0) + 1
            if r.status not in (200, 304):
                local[name][1][0] += 1
        c.close()
        with lock:
            for name, (lat, err, size, statuses) in local.items():
                results[name]["latencies"] += lat
                results[name]["errors"] += err[0]
                results[name]["bytes"] += size[0]
                for s, n in statuses.items():
                    results[name]["statuses"][s] = results[name]["statuses"].get(s, 0) + n

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    began = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"elapsed": time.monotonic() - began, "endpoints": results}


# ---- the benchmark ---------------------------------------------------------------------------------------------


def wiredesk_cmd() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "wiredesk"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "daemon"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def scrape(port: int) -> dict[str, float]:
    values = {}
    for line in get(port, "/metrics")[1].decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def benchmark(args) -> int:
    articles = read_jsonl(args.dataset)
    held = articles[:: args.hold_every] if args.hold_every else []
    held_ids = {a["id"] for a in held}
    stored = [a for a in articles if a["id"] not in held_ids]
    work = Path(tempfile.mkdtemp(prefix="wiredesk-load-")) if args.work is None else args.work
    work.mkdir(parents=True, exist_ok=True)
    db_file = work / "wiredesk.db"
    env = dict(
        os.environ,
        WIREDESK_DATABASE_URL=f"sqlite:///{db_file}",
        XDG_CONFIG_HOME=str(work / "c"),
        XDG_DATA_HOME=str(work / "d"),
    )

    t = time.monotonic()
    corpus = write_corpus(stored, work / "corpus")
    done = subprocess.run(
        [*wiredesk_cmd(), "replay", str(corpus), "--json"], cwd=work, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    replayed = json.loads(done.stdout)["stories"]
    print(
        f"replayed {len(stored)} articles of {args.dataset.name} into {len(replayed)} stories "
        f"in {time.monotonic() - t:.1f} s ({db_file})"
    )

    # Pages answer slowly enough that fetching them, two at a time, takes the first third of the measurement; the
    # poll then clusters them one by one, each new membership making the server render the digest again.
    page_delay = (
        args.page_delay if args.page_delay is not None else ((args.seconds / 3) * 2 / len(held) if held else 0.0)
    )
    farm = Farm(held, page_delay)
    port = free_port()
    lines = [
        "[fetch]",
        'allow_networks = ["127.0.0.0/8"]',
        "timeout = 30.0",
        "[schedule]",
        "parse_workers = 1",
        "[server]",
        f"port = {port}",
        "[digest]",
        f'base_url = "http://127.0.0.1:{port}/"',
        "[log]",
        'level = "WARNING"',
    ]
    for url, title, folder in farm.feed_urls():
        lines += ["[[feeds]]", f'url = "{url}"', f'title = "{title}"', f'folder = "{folder}"']
    (work / "wiredesk.toml").write_text("\n".join(lines) + "\n")
    log_file = open(work / "run.log", "w")  # noqa: SIM115 - the service writes to it until it is stopped
    run = subprocess.Popen([*wiredesk_cmd(), "run"], cwd=work, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        while True:
            if run.poll() is not None:
                print(f"wiredesk run exited early; see {work / 'run.log'}", file=sys.stderr)
                return 1
            try:
                if get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        before = scrape(port)
        sizes = {path: len(get(port, path)[1]) for path in ("/digest.atom", "/digest.rss", "/digest.json", "/")}
        entries = len(json.loads(get(port, "/digest.json")[1])["items"])
        load_began = time.monotonic()
        loader = subprocess.run(
            [
                sys.executable,
                __file__,
                "load",
                "--port",
                str(port),
                "--seconds",
                str(args.seconds),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
        )
        load_ended = time.monotonic()
        if loader.returncode != 0:
            print(loader.stderr, file=sys.stderr)
            return 1
        after = scrape(port)
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=30)
        except subprocess.TimeoutExpired:
            run.kill()
        log_file.close()
        farm.stop()

    result = json.loads(loader.stdout)
    elapsed = result["elapsed"]
    print(
        f"digest: {entries} entries; atom {sizes['/digest.atom'] // 1024} KiB, rss {sizes['/digest.rss'] // 1024} KiB, "
        f"json {sizes['/digest.json'] // 1024} KiB, html {sizes['/'] // 1024} KiB"
    )
    print(f"load: {args.threads} keep-alive connections from a second process, {elapsed:.1f} s, endpoints in turn\n")
    header = (
        f"{'endpoint':<42} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
        "  statuses"
    )
    print(header)
    print("-" * len(header))
    total = 0
    for name, r in result["endpoints"].items():
        lat = [x * 1000 for x in r["latencies"]]
        total += len(lat)
        statuses = ", ".join(f"{k}×{v}" for k, v in sorted(r["statuses"].items()))
        print(
            f"{name:<42} {len(lat):>9} {len(lat) / elapsed:>8.1f} {percentile(lat, 0.5):>8.1f} "
            f"{percentile(lat, 0.99):>8.1f} {max(lat, default=float('nan')):>8.1f} {r['errors']:>7}  {statuses}"
        )
    all_lat = [x * 1000 for r in result["endpoints"].values() for x in r["latencies"]]
    print(
        f"{'all':<42} {total:>9} {total / elapsed:>8.1f} {percentile(all_lat, 0.5):>8.1f} "
        f"{percentile(all_lat, 0.99):>8.1f} {max(all_lat, default=float('nan')):>8.1f}"
    )

    polls = after.get("wiredesk_poll_duration_seconds_count", 0)
    new_articles = after.get("wiredesk_articles", 0) - before.get("wiredesk_articles", 0)
    print(
        f"\npoll during the load: {len(held)} held-back articles on {len(farm.feeds)} loopback feeds, pages delayed "
        f"{page_delay * 1000:.0f} ms (two at a time per host); {farm.page_requests} pages fetched, "
        f"{new_articles:.0f} articles clustered while loading; stories {before.get('wiredesk_stories', 0):.0f} → "
        f"{after.get('wiredesk_stories', 0):.0f}"
    )
    if polls:
        finished = after.get("wiredesk_poll_duration_seconds_sum", 0)
        print(
            f"  the first poll took {finished:.1f} s from the start of the service; the load ran from "
            f"{load_began - started:.1f} s to {load_ended - started:.1f} s"
        )
    else:
        print(
            f"  the first poll was still running when the load ended ({load_ended - started:.1f} s after start): "
            "it overlapped the whole measurement"
        )
    print(f"  cores: {os.cpu_count()} shared by the service, the farm and the load generator; work folder {work}")
    if run.returncode != 0:
        print(f"  wiredesk run exited with {run.returncode} on SIGTERM; see {work / 'run.log'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load"]:
        p = argparse.ArgumentParser(prog="digest_load.py load")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--seconds", type=float, default=30)
        p.add_argument("--threads", type=int, default=8)
        a = p.parse_args(argv[1:])
        print(json.dumps(load_worker(a.host, a.port, a.seconds, a.threads)))
        return 0
    if argv[:1] == ["corpus"]:
        p = argparse.ArgumentParser(prog="digest_load.py corpus", description="write the fixture corpus only")
        p.add_argument("dataset", type=Path)
        p.add_argument("out", type=Path)
        a = p.parse_args(argv[1:])
        out = write_corpus(read_jsonl(a.dataset), a.out)
        print(f"wrote {out / 'manifest.json'}; replay it with: wiredesk replay {out}")
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path, help="JSONL corpus, one article a line (id, title, text)")
    p.add_argument("--seconds", type=float, default=30, help="how long the load runs (default 30)")
    p.add_argument("--threads", type=int, default=8, help="keep-alive connections of the load generator (default 8)")
    p.add_argument(
        "--hold-every",
        type=int,
        default=3,
        help="every Nth article is served by the farm and polled during the load instead of replayed",
    )
    p.add_argument("--page-delay", type=float, help="seconds each farm page takes (default: spread over the load)")
    p.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    args = p.parse_args(argv)
    if not args.dataset.is_file():
        print(
            f"digest_load.py: {args.dataset} is not a file (give the JSONL corpus, e.g. "
            "../shared/datasets/ecbplus-dev.jsonl)",
            file=sys.stderr,
        )
        return 2
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
