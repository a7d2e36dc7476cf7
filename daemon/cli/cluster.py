"""`wiredesk cluster FILE.jsonl`: run the engine over a JSONL corpus and print one decision per line."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from daemon.engine import Assignment, Document, Engine, Fingerprint
from daemon.errors import InputError

if TYPE_CHECKING:
    from daemon.engine.embed import Embedder


class CorpusError(InputError):
    """A line of the input corpus that cannot be read as an article."""


def _text(key: str, value: str) -> str:
    # JSON may spell a lone surrogate ("\ud800"): not a character, it cannot be written out or stored
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CorpusError(f"'{key}' contains {value[exc.start]!r}, a lone surrogate (not a character)") from exc
    return value


def _optional_str(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return v
    if isinstance(v, str):
        return _text(key, v)
    raise CorpusError(f"'{key}' must be a string or null")


def _parse_published(value: object) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CorpusError("'published' must be an ISO 8601 string or null")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CorpusError(f"'published' is not ISO 8601: {value!r}") from exc
    if dt.tzinfo is None:
        # A date without an offset is read as UTC rather than rejected: corpora often omit it.
        from datetime import timezone

        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def _document(line: str, seen: set[str]) -> Document:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"invalid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise CorpusError("JSON nested too deeply (an article is one flat object)") from exc
    if not isinstance(obj, dict):
        raise CorpusError("expected a JSON object")
    art_id = obj.get("id")
    if isinstance(art_id, int) and not isinstance(art_id, bool):
        art_id = str(art_id)
    if not isinstance(art_id, str) or not art_id:
        raise CorpusError("missing or empty 'id'")
    _text("id", art_id)
    if art_id in seen:
        raise CorpusError(f"duplicate id {art_id!r}")
    seen.add(art_id)
    return Document(
        id=art_id,
        title=_optional_str(obj, "title") or "",
        text=_optional_str(obj, "text") or "",
        published=_parse_published(obj.get("published")),
        source=_optional_str(obj, "source"),
        url=_optional_str(obj, "url"),
    )


MAX_LINE_CHARS = 64 << 20  # one article's line: its text is cut at fetch.max_article_chars (at most 10 million)


def read_corpus(path: str | os.PathLike[str]) -> list[Document]:
    """Every article of the file, or CorpusError naming the file and line of the first bad one."""
    docs: list[Document] = []
    seen: set[str] = set()
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(iter(lambda: fh.readline(MAX_LINE_CHARS + 1), ""), 1):
                if len(line) > MAX_LINE_CHARS:
                    raise CorpusError(f"{path}:{lineno}: longer than {MAX_LINE_CHARS} characters; one article a line")
                if not line.strip():
                    continue
                try:
                    docs.append(_document(line, seen))
                except CorpusError as exc:
                    raise CorpusError(f"{path}:{lineno}: {exc}") from exc
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text") from exc
    return docs


_DEFAULT = object()


def cluster_jsonl(
    path: str | os.PathLike[str],
    out: TextIO = sys.stdout,
    err: TextIO | None = None,
    embedder: Embedder | None | object = _DEFAULT,
) -> int:
    """Validate the whole file, then assign every article in input order; 0 on success, 2 on bad input.

    `embedder`: the semantic model (default: the installed one, as the daemon's default config has it; when it
    cannot be loaded one line on `err` says so and the stories use the lexical signals only). At the end one line on
    `err` gives the throughput: articles, seconds and articles per second (model loading not counted), the model's
    precision and the process's peak memory."""
    err = err if err is not None else sys.stderr
    try:
        docs = read_corpus(path)
    except CorpusError as exc:
        print(f"wiredesk cluster: {exc}", file=err)
        return 2
    started = time.perf_counter()
    if embedder is _DEFAULT:
        from daemon.app import semantic_embedder

        embedder = semantic_embedder(report=lambda line: print(f"wiredesk cluster: {line}", file=err))
    loaded = time.perf_counter()
    engine = Engine(embedder=embedder)
    rows = settled_stories(engine, docs)
    for a, first in rows:
        line: dict[str, Any] = {"id": a.article_id, "story": engine.story_of(a.article_id), "copy_of": a.copy_of}
        if line["story"] != first:
            line["placed_in"] = first  # the story it joined on arrival, before settling moved or merged it
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    out.flush()
    print(f"wiredesk cluster: {_throughput(len(docs), started, loaded, embedder)}", file=err)
    return 0


def _throughput(n: int, started: float, loaded: float, embedder: object) -> str:
    """ "772 articles in 21.4 s: 36.1 articles/s (model int8, loaded in 0.4 s); peak memory 312 MB"."""
    seconds = time.perf_counter() - loaded
    model = "none" if embedder is None else str(getattr(embedder, "precision", "custom"))
    peak = ""
    try:
        import resource

        peak = f"; peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    except ImportError:  # not on every OS
        pass
    return (
        f"{n:,} articles in {seconds:.1f} s: {n / max(seconds, 1e-9):.1f} articles/s "
        f"(model {model}, loaded in {loaded - started:.1f} s){peak}"
    )


SETTLE_EVERY_SECONDS = 3600.0  # stream time between settling passes, as the daemon settles every few minutes
SETTLE_EVERY_ARTICLES = 100  # without dates


def settled_stories(
    engine: Engine, docs: list[Document], fingerprints: list[Fingerprint] | None = None
) -> list[tuple[Assignment, str]]:
    """Every article's assignment and the story it was first placed in, after settling passes run by stream time
    (each hour of publication time, or every 100 undated articles) and once at the end: the stories a daemon
    would show. `fingerprints`: the documents' own, computed earlier (else computed here, in batches)."""
    out: list[tuple[Assignment, str]] = []
    last_pass: float | None = None
    since_pass = 0
    # fingerprints (and their vectors) in batches ahead of the decisions, which stay one article at a time
    fps = fingerprints if fingerprints is not None else engine.fingerprint_many(docs, chunksize=256)
    for doc, fp in zip(docs, fps):
        ts = doc.published.timestamp() if doc.published is not None else None
        if ts is not None:
            if last_pass is None:
                last_pass = ts
            elif ts - last_pass >= SETTLE_EVERY_SECONDS:
                engine.settle(doc.published)
                last_pass = ts
                since_pass = 0
        elif since_pass >= SETTLE_EVERY_ARTICLES:
            engine.settle()
            since_pass = 0
        a = engine.add(doc, fingerprint=fp)
        since_pass += 1
        out.append((a, a.story_id))
    engine.settle()
    return out
