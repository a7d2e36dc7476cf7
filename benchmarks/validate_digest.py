"""Check digest feeds with the W3C Feed Validation Service, run offline from a local checkout.

The validator is not part of wiredesk and is never copied into it: check it out anywhere (for example
/work/tmp/feedvalidator, from github.com/w3c/feedvalidator) and give its directory. It needs lxml, html5lib and
rdflib, so it usually runs in its own virtualenv.

Two commands:

  check VALIDATOR_DIR FILE...   validate digest files (Atom *.atom, RSS *.rss) as if fetched from their own
                                rel="self" URL, the way the online validator sees a served digest; run this with the
                                validator's Python. Exit status 1 when any error or warning is reported.

  sample --validator DIR --python PY [--out DIR]
                                render in every format the digest of the seed articles (one story, five outlets),
                                of a story built from hostile feed text, and an empty digest, then run `check` on
                                the Atom and RSS files with PY. Run this with the project's Python.

Example:
  .venv/bin/python benchmarks/validate_digest.py sample \\
      --validator /work/tmp/feedvalidator --python /work/tmp/fv-venv/bin/python --out benchmarks/out/digest
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_TYPES = {".atom": "application/atom+xml; charset=utf-8", ".rss": "application/rss+xml; charset=utf-8"}


# --- check (validator's Python) ----------------------------------------------------------------------------------


def self_url(data: bytes) -> str:
    root = ET.fromstring(data)
    links = root.findall(f"{ATOM}link") + root.findall(f"channel/{ATOM}link")
    for link in links:
        if link.get("rel") == "self" and link.get("href"):
            return link.get("href")
    return ""


def check(validator_dir: Path, files: list[Path]) -> int:
    src = validator_dir / "src"
    if not (src / "feedvalidator" / "__init__.py").is_file():
        print(f"error: {validator_dir} is not a feedvalidator checkout (no src/feedvalidator)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(src))
    try:
        import feedvalidator
        from feedvalidator import compatibility
        from feedvalidator.formatter.text_plain import Formatter
    except ImportError as exc:
        print(
            f"error: cannot import the validator ({exc}); run with a Python that has lxml, html5lib, rdflib",
            file=sys.stderr,
        )
        return 2

    failed = 0
    for path in files:
        try:
            data = path.read_bytes()
            url = self_url(data)
        except (OSError, ET.ParseError) as exc:
            print(f"{path}: cannot read: {exc}")
            failed += 1
            continue
        content_type = CONTENT_TYPES.get(path.suffix)
        try:
            events = feedvalidator.validateStream(
                io.BytesIO(data), firstOccurrenceOnly=1, contentType=content_type, base=url
            )["loggedEvents"]
        except feedvalidator.logging.ValidationFailure as failure:
            events = [failure.event]
        # "AA" is the level the online service reports: errors and warnings.
        output = Formatter(compatibility.AA(events))
        print(f"== {path} (as {url or 'no self link'}, {content_type or 'no content type'})")
        if output:
            print("\n".join(output))
            failed += 1
        else:
            print("No errors or warnings")
    return 1 if failed else 0


# --- sample (project's Python) -----------------------------------------------------------------------------------

# The seed files carry only text. Outlets come from DESIGN.md; times are taken from the articles' own datelines
# where they have one (001, 003) and otherwise from the day the text reports, so they are approximate.
SEED_FACTS = {
    "000": ("Yonhap", "2024-04-14T10:00:00+09:00", "Korea"),
    "001": ("The Korea Herald", "2024-04-13T21:10:00+09:00", "Korea"),
    "002": ("AP News", "2024-04-12T09:00:00+09:00", "Wires"),
    "003": ("The Dong-A Ilbo", "2024-04-15T08:09:00+09:00", "Korea"),
    "004": ("South China Morning Post", "2024-04-11T22:00:00+08:00", "China"),
}


def seed_title(lines: list[str]) -> str:
    """The first line that reads like a headline (five words or more); a long one is cut to its first sentence."""
    for line in lines:
        line = re.sub(r"^\s*date \d{4}-\d{2}-\d{2}\s+", "", line).strip()
        line = re.sub(r"^[^—]{0,40}\(\w+\)\s+—\s+", "", line)  # a wire dateline such as "SEOUL (AP) — "
        if len(line.split()) < 5:
            continue
        if len(line) <= 130:
            return line
        sentence = re.split(r"(?<=[a-z][.!?])\s", line, maxsplit=1)[0]
        if len(sentence) <= 130:
            return sentence.rstrip(".")
        return sentence[:130].rsplit(" ", 1)[0] + "…"
    return "(untitled)"


def seed_sources():
    from daemon.publish.render import DigestSource

    sources = []
    for path in sorted((ROOT / "seeds").glob("*.txt")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        title = seed_title(lines)
        body = [line.strip() for line in lines if len(line.split()) >= 12 and title.rstrip("…") not in line]
        outlet, published, folder = SEED_FACTS[path.stem[:3]]
        sources.append(
            DigestSource(
                article_id=path.stem,
                title=title,
                url=f"https://seeds.wiredesk.example/{path.stem}",
                outlet=outlet,
                published=datetime.fromisoformat(published),
                copy_of=None,
                summary=f"<p>{body[0]}</p>" if body else None,
                folder=folder,
            )
        )
    return sources


def hostile_story():
    from daemon.publish.render import DigestSource, DigestStory

    t0 = datetime(2024, 4, 13, 12, 0, tzinfo=timezone.utc)
    original = DigestSource(
        "h-1",
        'Wire <script>alert("x")</script>story ]]> with \x00\x08control\x1f chars',
        "https://wire.example/story?id=1&lang=en",
        "Wire <b onmouseover=alert(1)>Service</b>",
        t0,
        None,
        '<p onclick="steal()">First <a href="javascript:alert(1)">paragraph</a> <img src=x onerror=alert(2)>'
        '<style>body{display:none}</style><a href="/more">more</a> ]]> '
        '<iframe src="https://evil.example"></iframe></p>',
        "News & <i>Politics</i>",
    )
    copy = DigestSource(
        "h-2",
        "Wire story &lt;script&gt;alert(3)&lt;/script&gt;",
        "JaVaScRiPt:alert(4)",
        "Daily\x0bPaper",
        t0 + timedelta(hours=2),
        "h-1",
        "<svg onload=alert(5)>text</svg>",
        "News & Politics",
    )
    return DigestStory(
        uuid="urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "https://wiredesk.example/hostile")),
        title=original.title,
        primary=original,
        sources=(original, copy),
        created=t0,
        updated=t0 + timedelta(hours=2),
        copies=1,
    )


def sample(validator: Path, python: str, out: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from daemon.publish.render import FORMATS, DigestMeta, DigestStory, choose_primary, render

    members = seed_sources()
    primary = choose_primary(members)
    ordered = (primary,) + tuple(sorted((m for m in members if m is not primary), key=lambda m: m.published))
    seeds = DigestStory(
        uuid="urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "https://wiredesk.example/seeds")),
        title=primary.title,
        primary=primary,
        sources=ordered,
        created=primary.published,
        updated=max(m.published for m in members),
        copies=sum(1 for m in members if m.copy_of is not None),
    )
    meta = DigestMeta(
        title="wiredesk digest", self_url="http://localhost:8080/digest.atom", home_url="http://localhost:8080/"
    )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, stories in (("seeds", [seeds]), ("hostile", [hostile_story()]), ("empty", [])):
        for fmt in FORMATS:
            path = out / f"{name}.{fmt}"
            path.write_bytes(render(stories, fmt, meta))
            written.append(path)
    print("wrote " + ", ".join(str(p) for p in written))
    feeds = [str(p) for p in written if p.suffix in CONTENT_TYPES]
    return subprocess.run([python, str(Path(__file__).resolve()), "check", str(validator), *feeds]).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="validate digest files with the validator")
    p_check.add_argument("validator", type=Path, help="feedvalidator checkout directory")
    p_check.add_argument("files", type=Path, nargs="+", help="*.atom / *.rss digest files")
    p_sample = sub.add_parser("sample", help="render sample digests and validate them")
    p_sample.add_argument("--validator", type=Path, required=True, help="feedvalidator checkout directory")
    p_sample.add_argument("--python", default=sys.executable, help="Python with the validator's requirements")
    p_sample.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "digest")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.validator, args.files)
    return sample(args.validator, args.python, args.out)


if __name__ == "__main__":
    sys.exit(main())
