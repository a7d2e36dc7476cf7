"""Replay feedparser's own test corpus through the daemon: how many feeds parse, parse with a warning, are refused.

    git --git-dir=<feedparser mirror> archive HEAD tests | tar -x -C /tmp/feedparser
    python benchmarks/illformed.py /tmp/feedparser/tests [--show 10] [--keep DIR]

Every file of the corpus (illformed/, encoding/, wellformed/, entities/, json/, ...) is served over loopback as a
feed, with the HTTP headers that many of them declare in a leading comment ("Header: Content-type: ..."), so that
the encoding cases are served the way feedparser's own tests mean them. One `wiredesk poll --once` polls them all
against a fresh SQLite database; `wiredesk feeds list --json` then says how each one ended:

    parsed      active, no error
    warnings    active, last_error "parsed with a warning: ..." (feedparser recovered from a problem)
    refused     status error, last_error naming the feed and the reason

The script checks what must hold whatever the corpus holds: the poll exits 0 without a traceback, every feed was
polled, and every refusal names its feed and gives a reason. It exits 1 when one of those checks fails.
The corpus is read from where it was unpacked and never copied into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parent.parent

# feedparser's test files carry their HTTP headers in a comment: "Header: Content-type: application/xml;charset=..."
_HEADER = re.compile(rb"^Header:\s+([A-Za-z-]+):(.*?)\s*$", re.M)
# Framing is the server's business; a declared length or encoding would not match the bytes served.
_NOT_SERVED = {"content-length", "transfer-encoding", "content-encoding", "connection"}
WARNING_PREFIX = "parsed with a warning"


@dataclass(frozen=True)
class CorpusFile:
    rel: str  # path inside the corpus, with "/" separators
    folder: str  # first component of rel: the corpus folder it belongs to
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Outcome:
    file: CorpusFile
    url: str
    verdict: str  # "parsed", "warnings", "refused", "not polled"
    reason: str | None


def load_corpus(top: Path) -> list[CorpusFile]:
    files = []
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top)
        if not path.is_file() or len(rel.parts) < 2 or path.suffix == ".py":
            continue  # the corpus is in folders; files at the top are feedparser's test code
        if any(part.startswith((".", "__")) for part in rel.parts):
            continue
        body = path.read_bytes()
        headers = []
        for name, value in _HEADER.findall(body[:4096]):
            key = name.decode("latin-1")
            if key.lower() not in _NOT_SERVED:
                headers.append((key, value.strip().decode("latin-1")))
        if not any(k.lower() == "content-type" for k, _ in headers):
            ctype = "application/json" if path.suffix == ".json" else "application/xml"
            headers.append(("Content-Type", ctype))
        files.append(CorpusFile(rel.as_posix(), rel.parts[0], body, tuple(headers)))
    return files


class CorpusServer:
    """Serves /<relative path> as the file's bytes, on 127.0.0.1, in its own threads."""

    def __init__(self, files: list[CorpusFile]):
        self.by_path = {"/" + f.rel: f for f in files}
        self.hits: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body go out in two writes; with Nagle on, the second waits for a delayed ACK (~40 ms)
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = unquote(self.path.split("?", 1)[0])
                server.hits[path] += 1
                item = server.by_path.get(path)
                body = item.body if item else b"no such corpus file"
                self.send_response(200 if item else 404)
                for key, value in item.headers if item else (("Content-Type", "text/plain"),):
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ThreadingHTTPServer.request_queue_size = 1024
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, f: CorpusFile) -> str:
        return f"{self.base}/{quote(f.rel)}"

    def __enter__(self) -> CorpusServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def toml_string(text: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes for what appears in these URLs and names
    return json.dumps(text)


def write_config(path: Path, server: CorpusServer, files: list[CorpusFile]) -> None:
    lines = ["[fetch]", 'allow_networks = ["127.0.0.0/8"]', "fetch_articles = false", ""]
    for f in files:
        lines += ["[[feeds]]", f"url = {toml_string(server.url(f))}", f"folder = {toml_string(f.folder)}", ""]
    path.write_text("\n".join(lines))


def wiredesk_command() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "wiredesk"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "daemon"]


def run_wiredesk(args: list[str], workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*wiredesk_command(), *args], cwd=workdir, env=env, capture_output=True, text=True)


def classify(row: dict) -> tuple[str, str | None]:
    error = row.get("last_error")
    if row["status"] == "active" and not error:
        return ("parsed", None) if row.get("last_success") else ("not polled", None)
    if row["status"] == "active" and error.startswith(WARNING_PREFIX):
        return "warnings", error[len(WARNING_PREFIX) :].lstrip(": ")
    return "refused", error


def reason_of(error: str | None, url: str) -> str:
    """The reason without the feed URL it starts with, for grouping similar refusals."""
    text = (error or "").replace(url, "").strip(" :")
    text = re.sub(r"^(cannot fetch|refused to fetch)\s*:?\s*", "", text)
    return re.sub(r"line \d+, column \d+", "line N, column N", text)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return (
            "| "
            + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="replay feedparser's test corpus through `wiredesk poll --once`")
    p.add_argument("corpus", help="feedparser's tests/ folder (the one holding illformed/, encoding/, wellformed/)")
    p.add_argument("--show", type=int, default=10, help="refusals and warnings listed with their reasons (default 10)")
    p.add_argument(
        "--keep", metavar="DIR", help="keep the config, database and poll.log in DIR instead of a temporary folder"
    )
    args = p.parse_args(argv)

    top = Path(args.corpus)
    if (top / "tests" / "illformed").is_dir() and not (top / "illformed").is_dir():
        top = top / "tests"  # the repository root was given
    if not top.is_dir():
        print(f"illformed: {args.corpus} is not a folder (give feedparser's tests/ folder)", file=sys.stderr)
        return 2
    files = load_corpus(top)
    if not files:
        print(
            f"illformed: no corpus files under {top} (expected folders such as illformed/ and encoding/)",
            file=sys.stderr,
        )
        return 2

    with tempfile.TemporaryDirectory(prefix="wiredesk-illformed-") as scratch, CorpusServer(files) as server:
        work = Path(args.keep) if args.keep else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        db = work / "illformed.db"
        for stale in work.glob("illformed.db*"):
            stale.unlink()
        write_config(work / "wiredesk.toml", server, files)
        env = dict(
            os.environ,
            WIREDESK_DATABASE_URL=f"sqlite:///{db}",
            XDG_CONFIG_HOME=str(work / "config-home"),
            XDG_DATA_HOME=str(work / "data-home"),
        )
        started = time.monotonic()
        poll = run_wiredesk(["--config", "wiredesk.toml", "poll", "--once"], work, env)
        elapsed = time.monotonic() - started
        (work / "poll.log").write_text(poll.stdout + poll.stderr)
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        listing = run_wiredesk(["--config", "wiredesk.toml", "feeds", "list", "--json"], work, env)
        hits = Counter(server.hits)

    problems: list[str] = []
    if poll.returncode != 0:
        problems.append(f"`wiredesk poll --once` exited {poll.returncode}: {poll.stderr.strip()[-500:]}")
    if "Traceback" in poll.stderr:
        problems.append(
            "`wiredesk poll --once` printed a traceback:\n" + poll.stderr[poll.stderr.index("Traceback") :][:2000]
        )
    try:
        rows = {r["url"]: r for r in json.loads(listing.stdout)}
    except json.JSONDecodeError:
        rows = {}
        problems.append(
            f"`wiredesk feeds list --json` did not print JSON (exit {listing.returncode}): {listing.stderr.strip()[:500]}"
        )

    outcomes = []
    for f in files:
        url = server.url(f)
        row = rows.get(url)
        if row is None:
            outcomes.append(Outcome(f, url, "not polled", "missing from `wiredesk feeds list`"))
            continue
        verdict, reason = classify(row)
        outcomes.append(Outcome(f, url, verdict, reason))
        if verdict == "refused" and (url not in (reason or "") or not reason_of(reason, url)):
            problems.append(f"the refusal of {url} does not name the feed and a reason: {reason!r}")
        if hits["/" + f.rel] == 0:
            problems.append(f"{url} was never requested")
    not_polled = [o for o in outcomes if o.verdict == "not polled"]
    if not_polled:
        problems.append(f"{len(not_polled)} feeds were not polled, e.g. {not_polled[0].url}")

    verdicts = ("parsed", "warnings", "refused")
    by_folder: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        by_folder[o.file.folder][o.verdict] += 1
    header = ["folder", "files", "parsed", "parsed with warnings", "refused"] + (["not polled"] if not_polled else [])
    body = []
    for folder in sorted(by_folder):
        c = by_folder[folder]
        body.append([folder, sum(c.values()), *(c[v] for v in verdicts)] + ([c["not polled"]] if not_polled else []))
    total = Counter(o.verdict for o in outcomes)
    body.append(["total", len(outcomes), *(total[v] for v in verdicts)] + ([total["not polled"]] if not_polled else []))

    print(f"feedparser corpus {top}: {len(files)} files served over loopback and polled by one `wiredesk poll --once`")
    print(
        f"poll: exit {poll.returncode}, {elapsed:.1f} s, peak RSS of the largest child process {peak_kib / 1024:.0f} MiB"
    )
    print(f"poll said: {poll.stdout.strip().splitlines()[-1] if poll.stdout.strip() else '(nothing)'}")
    print()
    print(table(body, header))
    for verdict, title in (("refused", "refusals"), ("warnings", "warnings")):
        chosen = [o for o in outcomes if o.verdict == verdict]
        if not chosen:
            continue
        reasons = Counter(reason_of(o.reason, o.url)[:90] for o in chosen)
        print(f"\nmost common {title} ({len(reasons)} distinct):")
        for reason, n in reasons.most_common(args.show):
            print(f"  {n:5d}  {reason}")
        print(f"\nfirst {min(args.show, len(chosen))} {title}:")
        for o in chosen[: args.show]:
            print(f"  {o.file.rel}: {o.reason}")
    print()
    if problems:
        print(f"FAILED: {len(problems)} checks")
        for problem in problems[:20]:
            print(f"  - {problem}")
        return 1
    print(
        "checks passed: the poll exited 0 without a traceback, every feed was polled, every refusal names its feed and a reason"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
