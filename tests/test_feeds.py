"""Feed management: add/remove/list, OPML import (Miniflux and FreshRSS exports) and export, entry identity."""

import json
from pathlib import Path

import listparser
import pytest

from daemon.parse.feed import ParsedEntry
from daemon.parse.identity import canonical_url, entry_identity

DATA = Path(__file__).parent / "data"


def test_add_list_remove(db_url, wiredesk):
    assert wiredesk("feeds", "add", "https://example.com/feed.xml", "--folder", "News")[0] == 0
    code, out, _ = wiredesk("feeds", "add", "https://example.com/feed.xml")
    assert code == 0 and "already" in out
    code, out, _ = wiredesk("feeds", "list", "--json")
    rows = json.loads(out)
    assert [(r["url"], r["folder"], r["status"]) for r in rows] == [("https://example.com/feed.xml", "News", "active")]
    code, out, _ = wiredesk("feeds", "list")
    assert code == 0 and "example.com" in out and "next poll" in out and "active" in out
    assert wiredesk("feeds", "remove", "https://example.com/feed.xml")[0] == 0
    code, _, err = wiredesk("feeds", "remove", "https://example.com/feed.xml")
    assert code == 2 and "is not a feed" in err


@pytest.mark.parametrize(
    "name,expected",
    [
        (
            "miniflux.opml",
            {
                ("https://en.yna.co.kr/RSS/news.xml", "Korea"),
                ("https://www.koreaherald.com/rss/020000000000.xml", "Korea"),
                ("https://apnews.com/world-news.rss", "World"),
            },
        ),
        (
            "freshrss.opml",
            {
                ("https://www.scmp.com/rss/4/feed", "Asia"),
                ("https://www.donga.com/en/rss", "Asia"),
                ("https://en.yna.co.kr/RSS/news.xml", "Uncategorized"),
            },
        ),
    ],
)
def test_import_other_readers_opml(db_url, wiredesk, name, expected):
    code, out, err = wiredesk("feeds", "import", DATA / name)
    assert code == 0, err
    assert f"imported {len(expected)} new feeds" in out
    rows = json.loads(wiredesk("feeds", "list", "--json")[1])
    assert {(r["url"], r["folder"]) for r in rows} == expected
    # importing again adds nothing
    assert "imported 0 new feeds" in wiredesk("feeds", "import", DATA / name)[1]


def test_export_round_trips_with_folders(db_url, tmp_path, wiredesk):
    wiredesk("feeds", "import", DATA / "miniflux.opml")
    out_file = tmp_path / "out.opml"
    assert wiredesk("feeds", "export", "-o", out_file)[0] == 0
    parsed = listparser.parse(out_file.read_bytes())
    assert parsed.bozo == 0 and parsed.meta.get("title") == "wiredesk feeds"
    got = {(f.url, f.categories[0][0] if f.categories else None) for f in parsed.feeds}
    assert got == {
        ("https://en.yna.co.kr/RSS/news.xml", "Korea"),
        ("https://www.koreaherald.com/rss/020000000000.xml", "Korea"),
        ("https://apnews.com/world-news.rss", "World"),
    }
    assert b'version="2.0"' in out_file.read_bytes()


def test_bad_opml_is_refused_and_nothing_written(db_url, tmp_path, wiredesk):
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline xmlUrl='https://a.example/feed'>")
    code, _, err = wiredesk("feeds", "import", bad)
    assert code == 2 and "bad.opml" in err and len(err.strip().splitlines()) == 1
    notfeeds = tmp_path / "js.opml"
    notfeeds.write_text(
        '<opml version="2.0"><body><outline xmlUrl="https://ok.example/f"/><outline xmlUrl="javascript:alert(1)"/></body></opml>'
    )
    code, _, err = wiredesk("feeds", "import", notfeeds)
    assert code == 2 and "javascript:alert(1)" in err
    assert json.loads(wiredesk("feeds", "list", "--json")[1]) == []


def entry(**kw):
    base = dict(guid=None, url=None, title="t", author=None, summary="s", content=None, published=None, updated=None)
    base.update(kw)
    return ParsedEntry(**base)


def test_entry_identity_rules():
    assert entry_identity(entry(guid=" abc ", url="https://x.example/a")) == "guid:abc"
    # without a GUID, the canonical link: tracking parameters and fragments do not make a new entry
    a = entry_identity(entry(url="https://X.example/a?id=3&utm_source=rss&utm_medium=feed#top"))
    b = entry_identity(entry(url="https://x.example/a?id=3&fbclid=zzz"))
    assert a == b == "url:https://x.example/a?id=3"
    # neither: a content hash, equal for equal content only
    assert entry_identity(entry(title="one")) == entry_identity(entry(title="one"))
    assert entry_identity(entry(title="one")) != entry_identity(entry(title="two"))
    assert canonical_url("https://x.example/p?utm_campaign=a") == "https://x.example/p"
    # ordinary parameters often are the article's identity and stay
    assert (
        canonical_url("https://www.koreaherald.com/view.php?ud=20240413050123#c")
        == "https://www.koreaherald.com/view.php?ud=20240413050123"
    )
