"""Feed parsing: bytes in, typed entries out (feedparser does the reading).

A feed that feedparser can read only partly (``bozo`` set but entries found) is accepted with a warning, because
real feeds are often slightly broken; a feed with no usable entries and a bozo exception is refused with the reason.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import feedparser

from daemon.errors import FeedError, first_line
from daemon.parse.charset import check_encoding
from daemon.states import ErrorKind


@dataclass(frozen=True)
class ParsedEntry:
    guid: str | None
    url: str | None
    title: str | None
    author: str | None
    summary: str | None
    content: str | None  # the fullest HTML body the feed carries (content:encoded, atom:content)
    published: datetime | None
    updated: datetime | None

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.title, self.url, self.summary, self.content):
            h.update((part or "").encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.hexdigest()


@dataclass(frozen=True)
class ParsedFeed:
    url: str
    title: str | None
    site_url: str | None
    ttl_minutes: int | None
    entries: tuple[ParsedEntry, ...]
    warning: str | None  # set when feedparser had to recover from a problem
    hub_url: str | None = None  # the WebSub hub it names (Link header, else <link rel="hub">)
    self_url: str | None = None  # its own URL as it names it (rel="self"): the topic a hub knows it by


def _time(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None


# What a feed may put in each field, in characters. Longer values are cut (a link is dropped instead: a cut URL is a
# wrong one), so that one hostile feed cannot make a digest, a table or a cache as large as the feed itself.
MAX_TITLE_CHARS = 1_000  # an entry's title
MAX_NAME_CHARS = 300  # a feed's title (the outlet's name) and an entry's author
MAX_URL_CHARS = 2_048  # links; the feeds table's URL column is this long
MAX_GUID_CHARS = 2_000  # an entry's guid (its identity keeps this much)
MAX_SUMMARY_CHARS = 50_000  # an entry's summary
MAX_CONTENT_CHARS = 1_000_000  # an entry's full body (HTML); its text is then cut to fetch.max_article_chars

# Never text: C0 controls but tab and line breaks, DEL, C1 controls, lone surrogates (no encoding takes them), the
# noncharacters U+FFFE/U+FFFF, and NUL, which PostgreSQL refuses in text.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Invisible in a one-line name, and able to reorder or hide what is shown around it: bidirectional embeddings,
# overrides and isolates, zero-width characters and other format controls, line and paragraph separators.
INVISIBLE_CHARS = re.compile(
    "[\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_LINE_SPACE = re.compile(r"\s+")


def clean_text(value: str | None, limit: int) -> str | None:
    """Body text as a database takes it: characters that are never text removed, at most ``limit`` characters."""
    if not value:
        return None
    value = _NOT_TEXT.sub("", value[: limit * 2])  # removing never lengthens: look at a bounded slice only
    return _cut(value, limit) or None


def clean_name(value: str | None, limit: int) -> str | None:
    """A title or a name: one line of visible text (control, bidi and zero-width characters removed), cut."""
    if not value:
        return None
    value = INVISIBLE_CHARS.sub("", _NOT_TEXT.sub(" ", value[: limit * 4]))
    return _cut(_LINE_SPACE.sub(" ", value).strip(), limit) or None


def clean_url(value: str | None) -> str | None:
    if not value:
        return None
    value = _NOT_TEXT.sub("", value.strip()[: MAX_URL_CHARS + 1])
    return value if value and len(value) <= MAX_URL_CHARS else None


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "\u2026"


def _entry(raw) -> ParsedEntry:
    content = None
    contents = raw.get("content") or []
    if contents:
        # prefer HTML over plain text, and the longest body when a feed carries several
        best = max(contents, key=lambda c: ("html" in (c.get("type") or ""), len(c.get("value") or "")))
        content = best.get("value") or None
    summary = raw.get("summary") or None
    if content and summary and content.strip() == summary.strip():
        summary = None
    return ParsedEntry(
        guid=clean_text(raw.get("id"), MAX_GUID_CHARS),
        url=clean_url(raw.get("link")),
        title=clean_name(raw.get("title"), MAX_TITLE_CHARS),
        author=clean_name(raw.get("author"), MAX_NAME_CHARS),
        summary=clean_text(summary, MAX_SUMMARY_CHARS),
        content=clean_text(content, MAX_CONTENT_CHARS),
        # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed with a warning
        published=_time(dict.get(raw, "published_parsed")) or _time(dict.get(raw, "updated_parsed")),
        updated=_time(dict.get(raw, "updated_parsed")),
    )


_DOCTYPE_BODY = re.compile(rb"[^\[>\"'<]*")
_WS_RUN = re.compile(rb"\s+")
MAX_WIDE_PROLOG = 4096  # UTF-16/32 prologs are checked but not rewritten, so they are kept short instead


def _refuse(url: str, why: str) -> None:
    raise FeedError(url, f"refused: {why}", kind=ErrorKind.REFUSED_XML)


def clean_prolog(data: bytes, url: str) -> bytes:
    """Check what precedes the root element in one linear scan, and hand feedparser a short prolog.

    Refused: a DOCTYPE with an internal subset (where entities are declared: billion-laughs and external-entity
    attacks need one; real feeds do not), a second or unterminated DOCTYPE, other markup declarations. The prolog is
    reduced to the XML declaration and the DOCTYPE because feedparser's own prolog handling is quadratic in blank
    and comment lines, so a megabyte of them would stall a parse for hours. No regex here may backtrack.
    """
    wide = data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]
    text = data.replace(b"\x00", b"") if wide else data
    first = text.find(b"<")
    pos = 0
    keep: list[bytes] = []
    doctype = False
    while True:
        lt = text.find(b"<", pos)
        if lt < 0:
            return data  # no root element: feedparser reports "not a feed"
        if text.startswith(b"<!--", lt):
            end = text.find(b"-->", lt + 4)
            if end < 0:
                return data
            pos = end + 3
        elif text.startswith(b"<?", lt):
            end = text.find(b"?>", lt + 2)
            if end < 0:
                return data
            if lt == first and text[lt : lt + 6].lower() in (b"<?xml ", b"<?xml\t", b"<?xml\n", b"<?xml\r"):
                keep.append(text[lt : end + 2])
            pos = end + 2
        elif text.startswith(b"<!", lt):
            if text[lt : lt + 9].upper() != b"<!DOCTYPE":
                _refuse(url, "the feed has XML markup declarations before its root element")
            if doctype:
                _refuse(url, "the feed has more than one DOCTYPE")
            doctype = True
            i = lt + 9
            while True:
                body = _DOCTYPE_BODY.match(text, i)
                assert body is not None  # the pattern matches the empty string too
                i = body.end()
                c = text[i : i + 1]
                if c in (b'"', b"'"):
                    close = text.find(c, i + 1)
                    if close < 0:
                        return data
                    i = close + 1
                elif c == b"[":
                    _refuse(
                        url,
                        "the feed declares XML entities in its DOCTYPE (a billion-laughs or external-entity attack)",
                    )
                elif c == b"<" or not c:
                    _refuse(url, "the feed's DOCTYPE is not terminated")
                else:  # ">"
                    break
            keep.append(text[lt : i + 1])
            pos = i + 1
        else:
            root = lt
            break
    if wide:
        if root > MAX_WIDE_PROLOG:
            _refuse(url, f"the feed has more than {MAX_WIDE_PROLOG} bytes before its root element")
        return data
    return _WS_RUN.sub(b" ", text[:first]).strip(b" \t\r\n") + b"\n".join(keep) + b"\n" + text[root:]


# A numeric character reference; the digits are possessive so that a long run without ";" is scanned once.
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]++)|([0-9]++));")
_REPLACEMENT_REF = b"&#xFFFD;"


def _xml_char(code: int) -> bool:
    return code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def _bad_ref(match: re.Match) -> bool:
    digits = match.group(1) or match.group(2)
    if len(digits.lstrip(b"0")) > 8:  # beyond any code point; int() of a million digits would be slow or refused
        return True
    return not _xml_char(int(digits, 16 if match.group(1) else 10))


def _replace_bad_refs(text: bytes) -> tuple[bytes, int]:
    count = 0

    def sub(match: re.Match) -> bytes:
        nonlocal count
        if _bad_ref(match):
            count += 1
            return _REPLACEMENT_REF
        return match.group(0)

    return _CHAR_REF.sub(sub, text), count


_WIDE_CODECS = (  # (how the document starts, its codec), most specific first
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
)


def neutralise_char_refs(data: bytes) -> tuple[bytes, int]:
    """References to characters XML forbids (a surrogate, U+0000, beyond U+10FFFF) become U+FFFD, with their count.

    feedparser's fallback parser turns such a reference into a character and then fails on it (UnicodeEncodeError,
    ValueError, OverflowError), or hands on a NUL that no database takes; one bad title must not cost the feed.
    """
    if b"&#" not in data.replace(b"\x00", b""):
        return data, 0
    for start, codec in _WIDE_CODECS:
        if data.startswith(start):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                return data, 0  # not what it claims to be: feedparser says so
            fixed, count = _replace_bad_refs(text.encode("utf-8", "surrogatepass"))
            return (
                (fixed.decode("utf-8", "surrogatepass").encode(codec, "surrogatepass"), count) if count else (data, 0)
            )
    return _replace_bad_refs(data)


def parse_feed(data: bytes, url: str, headers: dict | None = None, max_entries: int | None = None) -> ParsedFeed:
    if data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        raise FeedError(url, "this is JSON (a JSON Feed?); wiredesk reads RSS and Atom feeds", kind=ErrorKind.PARSE)
    data = clean_prolog(check_encoding(data, url, headers), url)  # UTF-7, EBCDIC...: refused before the prolog check
    data, bad_refs = neutralise_char_refs(data)
    try:
        # feedparser never fetches here: it is given bytes, and the response headers only for the encoding.
        parsed = feedparser.parse(
            data, response_headers=dict(headers or {}), sanitize_html=False, resolve_relative_uris=True
        )
    except Exception as exc:  # feedparser's fallback parser has raised on odd input before: the feed's error, no more
        raise FeedError(
            url, f"the feed cannot be read ({type(exc).__name__}: {_describe(exc)})", kind=ErrorKind.PARSE
        ) from exc
    problem = parsed.get("bozo_exception")
    version = parsed.get("version") or ""
    raw_entries = parsed.get("entries") or []
    if not version and not raw_entries:
        reason = f"not a feed ({_describe(problem)})" if problem else "not an RSS or Atom feed"
        raise FeedError(url, reason, kind=ErrorKind.PARSE)
    if not raw_entries and parsed.get("bozo") and problem is not None:
        # broken and nothing recovered (a cut-off download, say): an error, not an empty feed
        raise FeedError(url, f"broken feed with no readable entries ({_describe(problem)})", kind=ErrorKind.PARSE)
    entries_list, skipped = [], []
    for raw in raw_entries[: max_entries or None]:
        try:
            entries_list.append(_entry(raw))
        except Exception as exc:  # one unreadable entry costs itself, not the feed
            skipped.append(f"{type(exc).__name__}: {_describe(exc)}")
    entries = tuple(entries_list)
    ttl = None
    try:
        ttl = int(parsed.feed.get("ttl")) if parsed.feed.get("ttl") else None
    except (TypeError, ValueError):
        ttl = None
    warning = _describe(problem) if parsed.get("bozo") and problem else None
    notes = [warning] if warning else []
    if bad_refs:
        notes.append(
            f"replaced {bad_refs} reference{'s' if bad_refs > 1 else ''} to characters XML forbids with U+FFFD"
        )
    if skipped:
        notes.append(f"skipped {len(skipped)} unreadable entr{'ies' if len(skipped) > 1 else 'y'} ({skipped[0]})")
    if max_entries and len(raw_entries) > max_entries:
        notes.append(f"kept the first {max_entries} of {len(raw_entries)} entries (fetch.max_entries_per_feed)")
    warning = "; ".join(notes) or None
    hub, self_url = websub_links(parsed.feed.get("links") or [], headers)
    return ParsedFeed(
        url=url,
        title=clean_name(parsed.feed.get("title"), MAX_NAME_CHARS),
        site_url=clean_url(parsed.feed.get("link")),
        ttl_minutes=ttl,
        entries=entries,
        warning=warning,
        hub_url=hub,
        self_url=self_url,
    )


_LINK_HEADER = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r';\s*rel\s*=\s*"?([^";]+)"?', re.IGNORECASE)


def websub_links(links, headers: dict | None) -> tuple[str | None, str | None]:
    """The hub and self URLs a feed names for WebSub (W3C, 2018, section 4): HTTP Link headers first, then the
    document's own links; only http(s) URLs within the length limit."""
    found: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if key.lower() != "link" or not isinstance(value, str):
            continue
        for target, params in _LINK_HEADER.findall(value[:8192]):
            for rel in _REL.findall(params):
                for name in rel.lower().split():
                    found.setdefault(name, target.strip())
    for link in links:
        rel = (link.get("rel") or "").lower()
        if rel in ("hub", "self") and link.get("href"):
            found.setdefault(rel, str(link["href"]).strip())

    def usable(value: str | None) -> str | None:
        value = clean_url(value)
        return value if value and value.lower().startswith(("http://", "https://")) and len(value) <= 2048 else None

    return usable(found.get("hub")), usable(found.get("self"))


def _describe(exc: BaseException | None) -> str:
    return "unknown problem" if exc is None else first_line(exc, 200)
