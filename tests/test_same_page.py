"""One article per page: the same canonical URL through two feeds is one stored article with both feeds recorded,
one member of its story, shown once (real feeds over loopback; SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import lxml.html
import pytest
import sqlalchemy as sa
from conftest import count_rows
from helpers import resolve_on_loopback
from test_http import start_server
from test_service import ITEM, PAGE, RSS, seed_paragraphs, write_config

WHEN = "Sat, 13 Apr 2024 {hour:02d}:00:00 GMT"


def serve_sections(httpserver, sections: dict[str, list[tuple[str, str, int]]]) -> str:
    """sections: feed name -> [(page path, seed stem, hour)]. Each page is served once whichever feeds list it; a
    feed may write the link with its own tracking parameters (the canonical URL drops them)."""
    base = httpserver.url_for("").rstrip("/")
    pages: set[str] = set()
    for name, items in sections.items():
        rendered = []
        for path, stem, hour in items:
            paras = seed_paragraphs(stem)
            title = f"Headline of {path}"
            rendered.append(
                ITEM.format(
                    title=title,
                    link=f"{base}/{path}?utm_source={name}",
                    guid=f"{name}-{path}",
                    date=WHEN.format(hour=hour),
                    summary=paras[0][:150],
                )
            )
            if path not in pages:
                pages.add(path)
                httpserver.expect_request(f"/{path}").respond_with_data(
                    PAGE.format(title=title, paras="".join(f"<p>{p}</p>" for p in paras)), content_type="text/html"
                )
        httpserver.expect_request(f"/{name}.xml").respond_with_data(
            RSS.format(title=name, base=base, items="".join(rendered)), content_type="application/rss+xml"
        )
    return base


def _rows(db_url: str, query: str) -> list:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(query)))
    finally:
        engine.dispose()


def _check_one_article(db_url, wiredesk, base, page_path="herald/zhao.html"):
    """Two feeds list one page: one article, both feeds recorded and counted, one member, shown once."""
    page = f"{base}/{page_path}"
    counts = count_rows(db_url)
    assert counts["entries"] == 3 and counts["articles"] == 2 and counts["memberships"] == 2
    assert [
        tuple(r) for r in _rows(db_url, "select url, count(*) from articles group by url having count(*) > 1")
    ] == []
    (recorded,) = _rows(db_url, "select a.url, f.source from article_feeds f join articles a on a.id = f.article_id")
    assert recorded[0] == page
    # each feed still counts its entry
    listed = {f["title"]: f["entries"] for f in json.loads(wiredesk("feeds", "list", "--json")[1])}
    assert listed == {"national": 2, "world": 1}
    code, out, err = wiredesk("stories", "--json")
    assert code == 0, err
    members = [a for s in json.loads(out) for a in s["articles"] if a["url"] == page]
    assert len(members) == 1 and sorted(members[0]["feeds"]) == ["national", "world"]

    server, served = start_server(db_url)
    try:
        stories = json.loads(served.get("/api/stories")[2])["stories"]
        shown = [(s, a) for s in stories for a in s["articles"] if a["url"] == page]
        assert len(shown) == 1
        story, article = shown[0]
        assert sorted(article["feeds"]) == ["national", "world"]
        one = json.loads(served.get(f"/api/stories/{story['id']}")[2])
        assert [sorted(a["feeds"]) for a in one["articles"] if a["url"] == page] == [["national", "world"]]
        status, _, body = served.get(f"/story/{story['id']}")
        text = lxml.html.fromstring(body).text_content()
        assert status == 200 and ("in the feeds national, world" in text or "in the feeds world, national" in text)
        # the digest shows it once, and a digest of either feed has its story
        digest = served.digest()
        assert sum(page in json.dumps(item) for item in digest["items"]) == 1
        for name in ("world", f"{base}/world.xml", "national"):
            assert story["uuid"] in [i["id"] for i in served.digest(feed=name)["items"]], name
    finally:
        server.stop()
        served.db.engine.dispose()


def test_the_same_url_in_two_feeds_is_one_article(db_url, tmp_path, httpserver, wiredesk):
    base = serve_sections(
        httpserver,
        {
            "national": [("herald/zhao.html", "001", 10), ("ap/drill.html", "002", 11)],
            "world": [("herald/zhao.html", "001", 12)],
        },
    )
    write_config(tmp_path, base, ["national", "world"])
    code, out, err = wiredesk("poll", "--once")
    assert code == 0, err
    assert "3 new entries, 2 new articles" in out
    _check_one_article(db_url, wiredesk, base)
    # polling again adds nothing
    code, out, err = wiredesk("poll", "--once", "--all")
    assert code == 0 and count_rows(db_url)["articles"] == 2, err


def test_a_page_already_stored_arriving_through_a_second_feed_later(db_url, tmp_path, httpserver, wiredesk):
    base = serve_sections(
        httpserver,
        {
            "national": [("herald/zhao.html", "001", 10), ("ap/drill.html", "002", 11)],
            "world": [("herald/zhao.html", "001", 12)],
        },
    )
    write_config(tmp_path, base, ["national"])
    assert wiredesk("poll", "--once")[0] == 0
    before = _rows(
        db_url,
        "select m.story_id, m.seq, s.article_count from memberships m "
        "join stories s on s.id = m.story_id order by m.seq",
    )
    assert wiredesk("feeds", "add", f"{base}/world.xml")[0] == 0
    code, out, err = wiredesk("poll", "--once")
    assert code == 0, err
    assert "1 new entries, 0 new articles" in out
    # the story's membership and copies are as they were
    assert (
        _rows(
            db_url,
            "select m.story_id, m.seq, s.article_count from memberships m "
            "join stories s on s.id = m.story_id order by m.seq",
        )
        == before
    )
    _check_one_article(db_url, wiredesk, base)


def test_a_second_article_for_one_page_is_refused_by_the_database(db_url, tmp_path, httpserver, wiredesk, monkeypatch):
    """Workers deciding at the same time: a lookup that ran before another worker committed the page finds nothing,
    and the unique key refuses the second article; the entry is then recorded on the first."""
    import storage.articles as articles

    base = serve_sections(
        httpserver, {"national": [("herald/zhao.html", "001", 10)], "world": [("herald/zhao.html", "001", 12)]}
    )
    write_config(tmp_path, base, ["national"])
    assert wiredesk("poll", "--once")[0] == 0
    assert wiredesk("feeds", "add", f"{base}/world.xml")[0] == 0
    lookups = []
    real = articles.stored_pages

    def late(s, keys):
        lookups.append(keys)
        return {} if len(lookups) == 1 else real(s, keys)  # the first lookup: before the other worker's commit

    monkeypatch.setattr(articles, "stored_pages", late)
    code, out, err = wiredesk("poll", "--once")
    assert code == 0, err
    assert len(lookups) == 2, "refused once, then looked up again"
    assert count_rows(db_url)["articles"] == 1
    assert len(_rows(db_url, "select id from article_feeds")) == 1
    assert _rows(db_url, "select state, error from entries where state != 'done'") == []


def test_an_older_database_keeps_its_pages_stored_twice(db_url):
    """Migration 0007 keys the first article of each URL and leaves the later copies of a page stored twice as they
    are (nothing stored is lost); a new entry of that page joins the first."""
    from alembic import command

    from storage.db import Database, _alembic_config, open_database

    old = Database(db_url)
    command.upgrade(_alembic_config(old.engine), "0006")
    with old.engine.begin() as conn:
        for i, url in enumerate(["https://news.example/a", "https://news.example/a", "https://news.example/b", None]):
            conn.execute(
                sa.text(
                    "insert into articles (id, url, title, text, extracted_from, text_hash, fingerprint, created_at) "
                    "values (:id, :url, 't', 'x', 'feed', 'h', :fp, '2026-01-01 00:00:00+00')"
                ),
                {"id": i + 1, "url": url, "fp": b""},
            )
    old.dispose()
    db = open_database(db_url)
    from storage.articles import url_key

    keys = dict(_rows(db_url, "select id, url_key from articles order by id"))
    assert keys == {1: url_key("https://news.example/a"), 2: None, 3: url_key("https://news.example/b"), 4: None}
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.execute(sa.text("update articles set url_key = :k where id = 2"), {"k": keys[1]})
    db.dispose()


def test_the_tables_count_publishers_as_the_digest_does(db_url, tmp_path, httpserver, wiredesk, monkeypatch):
    """Two section feeds of one paper are one outlet in `wiredesk stories` (table and --json) and `story`, as in the
    digest, named by [outlets]. The feeds are served from the paper's own sites (their host names answered with the
    loopback server), since without the pages the feed's site is what says whose articles they are."""
    from html import escape

    from conftest import ROOT

    def text(path: str) -> str:
        return escape("".join(f"<p>{p.strip()}</p>" for p in (ROOT / path).read_text().split("\n\n") if p.strip()))

    sections = {
        "yonhap": ("Yonhap", "https://en.yna.co.kr/view/AEN20240414000300315", "seeds/000_3324a5df7957fe74.txt", 10),
        "national": (
            "Herald National",
            "https://www.koreaherald.com/view.php?ud=1",
            "seeds/001_d689609cb1ce60ea.txt",
            11,
        ),
        "world": (
            "Herald World",
            "https://news.koreaherald.com/view.php?ud=2",
            "seeds/made/100_koreatimes_copy.txt",
            12,
        ),
    }
    base = httpserver.url_for("").rstrip("/")
    for name, (title, link, path, hour) in sections.items():
        item = ITEM.format(
            title=f"{title} on Zhao Leji", link=link, guid=link, date=WHEN.format(hour=hour), summary=text(path)
        )
        httpserver.expect_request(f"/{name}.xml").respond_with_data(
            RSS.format(title=title, base=base, items=item), content_type="application/rss+xml"
        )
    sites = {"yonhap": "en.yna.co.kr", "national": "www.koreaherald.com", "world": "news.koreaherald.com"}
    resolve_on_loopback(monkeypatch, {host: "127.0.0.1" for host in sites.values()})
    cfg = write_config(tmp_path, base, list(sections))
    written = cfg.read_text()
    for name, host in sites.items():
        written = written.replace(f"{base}/{name}.xml", f"http://{host}:{httpserver.port}/{name}.xml")
    cfg.write_text(
        written.replace("[fetch]\n", "[fetch]\nfetch_articles = false\n")
        + '[outlets]\n"koreaherald.com" = "The Korea Herald"\n'
    )
    code, out, err = wiredesk("poll", "--once")
    assert code == 0 and "3 new articles" in out, err
    code, out, err = wiredesk("stories", "--json")
    assert code == 0, err
    (story,) = json.loads(out)
    assert len(story["articles"]) == 3
    assert sorted(story["outlets"]) == ["The Korea Herald", "Yonhap"]
    code, table, err = wiredesk("stories")
    assert code == 0, err
    assert "The Korea Herald" in table and "Herald National" not in table and "Herald World" not in table
    code, detail, err = wiredesk("story", story["id"])
    assert code == 0 and "outlets: " in detail and "Herald World" not in detail.split("outlets: ")[1].splitlines()[0]
    # the digest says the same
    code, out, err = wiredesk("digest", "--format", "json")
    assert code == 0, err
    (item,) = json.loads(out)["items"]
    assert "3 articles from 2 outlets" in item["content_html"]
