"""The JSON API and the story pages over real HTTP on loopback, over the replayed seeds (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import feedparser
import lxml.html
from test_http import BASE_CONFIG, serve, served  # noqa: F401 (fixtures)

WIRE_ORIGINAL = "000_3324a5df7957fe74"
COPIES = {"100_koreatimes_copy", "101_joongang_copy"}


def get_json(served, path):
    status, headers, body = served.get(path)
    assert status == 200, body
    assert headers["content-type"] == "application/json; charset=utf-8"
    return json.loads(body)


def test_api_stories_is_the_digest_in_json(served, manifest):
    listed = get_json(served, "/api/stories")["stories"]
    digest = served.digest()
    assert [s["uuid"] for s in listed] == [i["id"] for i in digest["items"]], "same stories, same order"
    published = {a["id"]: a["published"] for a in manifest["articles"]}
    for story in listed:
        assert set(story) >= {"id", "title", "published", "updated", "outlets", "articles"}
        assert story["published"] <= story["updated"]
        for a in story["articles"]:
            assert set(a) >= {"id", "title", "url", "outlet", "published", "copy_of"}
            assert a["id"] in published
    updated = [s["updated"] for s in listed]
    assert updated == sorted(updated, reverse=True) and len(set(updated)) == len(updated)
    seed = next(s for s in listed if any(a["id"] == WIRE_ORIGINAL for a in s["articles"]))
    assert seed["published"] == "2024-04-11T14:17:00Z" and seed["updated"] == "2024-04-14T23:09:00Z"
    assert {a["id"] for a in seed["articles"] if a["copy_of"] == WIRE_ORIGINAL} == COPIES
    assert len(seed["outlets"]) == 7 and seed["page"] == f"http://digest.test/story/{seed['id']}"

    # limit and offset page through the same order; the digest's filters apply
    assert [s["id"] for s in get_json(served, "/api/stories?limit=2")["stories"]] == [s["id"] for s in listed[:2]]
    assert [s["id"] for s in get_json(served, "/api/stories?limit=2&offset=2")["stories"]] == [
        s["id"] for s in listed[2:4]
    ]
    assert get_json(served, f"/api/stories?offset={len(listed)}")["stories"] == []
    several = get_json(served, "/api/stories?min_outlets=2")["stories"]
    assert several and all(len(s["outlets"]) >= 2 for s in several) and seed["id"] in {s["id"] for s in several}
    assert served.get("/api/stories?offset=-1")[0] == 400
    assert served.get("/api/stories?colour=red")[0] == 400


def test_api_one_story_and_the_feeds(served):
    listed = get_json(served, "/api/stories")["stories"]
    seed = next(s for s in listed if any(a["id"] == WIRE_ORIGINAL for a in s["articles"]))
    one = get_json(served, f"/api/stories/{seed['id']}")
    assert one["id"] == seed["id"] and one["title"] == seed["title"]
    assert [a["id"] for a in one["articles"]] == [a["id"] for a in seed["articles"]]
    assert all(a["why"] for a in one["articles"]), "each member says why it joined"
    copy = next(a for a in one["articles"] if a["id"] in COPIES)
    assert copy["why"].startswith(f"copy of {WIRE_ORIGINAL}")
    # by its urn:uuid, a prefix, or one of its articles
    assert get_json(served, f"/api/stories/{seed['uuid']}")["id"] == seed["id"]
    assert get_json(served, f"/api/stories/{seed['id'][:12]}")["id"] == seed["id"]
    assert get_json(served, f"/api/stories/{WIRE_ORIGINAL}")["id"] == seed["id"]
    status, headers, _ = served.get("/api/stories/no-such-story")
    assert status == 404 and headers["content-type"].startswith("text/plain")
    assert served.get("/api/nothing")[0] == 404

    feeds = get_json(served, "/api/feeds")["feeds"]
    assert len(feeds) >= 7 and all(f["status"] == "active" and f["entries"] >= 1 for f in feeds)
    assert {"Yonhap", "AP"} <= {f["title"] for f in feeds}


def test_story_page_shows_every_member_and_why(served):
    listed = get_json(served, "/api/stories")["stories"]
    seed = next(s for s in listed if any(a["id"] == WIRE_ORIGINAL for a in s["articles"]))
    one = get_json(served, f"/api/stories/{seed['id']}")
    status, headers, body = served.get(f"/story/{seed['id']}")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["content-security-policy"]
    page = lxml.html.fromstring(body)
    assert page.findtext(".//h1/a") == seed["title"]
    assert not page.xpath("//script") and not page.xpath("//@*[starts-with(name(), 'on')]")
    items = page.xpath("//main/ol/li")
    assert len(items) == len(one["articles"])
    for li, article in zip(items, one["articles"]):
        text = li.text_content()
        assert li.xpath("./a")[0].get("href") == article["url"]
        assert f"— {article['outlet']}, " in text
        assert article["why"].splitlines()[0][:40] in text
        if article["copy_of"]:
            assert "copy of Yonhap" in text
    assert served.get("/story/no-such-story")[0] == 404
    assert served.get(f"/story/{seed['id']}/more")[0] == 404

    # the digests link to it, the primary article stays the entry's alternate link
    atom = feedparser.parse(served.get("/digest.atom")[2])
    entry = next(e for e in atom.entries if e.id == seed["uuid"])
    rels = {(link.rel, link.href) for link in entry.links}
    assert ("alternate", seed["url"]) in rels and ("related", seed["page"]) in rels
    assert seed["page"] in served.get("/")[2].decode()


def test_outlets_are_named_by_the_config(serve):
    served = serve(BASE_CONFIG + '[outlets]\n"koreaherald.com" = "Herald of Korea"\n"koreatimes.co.kr" = "KT"\n')
    listed = get_json(served, "/api/stories")["stories"]
    seed = next(s for s in listed if any(a["id"] == WIRE_ORIGINAL for a in s["articles"]))
    assert {"Herald of Korea", "KT", "Yonhap"} <= set(seed["outlets"]) and len(seed["outlets"]) == 7
    assert {a["outlet"] for a in seed["articles"] if a["id"] == "001_d689609cb1ce60ea"} == {"Herald of Korea"}
    # the config's name is what a reader prefers or filters by, the domain works as well
    preferred = serve(BASE_CONFIG + 'preferred_outlets = ["dong-a.com", "donga.com"]\n')
    seed = next(s for s in get_json(preferred, "/api/stories")["stories"] if s["id"] == seed["id"])
    assert seed["outlets"][0] == "Dong-A Ilbo" and seed["url"].startswith("https://www.donga.com/")


def test_the_page_is_paginated(served):
    everything = [s["uuid"] for s in get_json(served, "/api/stories")["stories"]]
    assert len(everything) >= 5
    seen = []
    path = "/?limit=2"
    pages = 0
    while path:
        status, _, body = served.get(path)
        assert status == 200
        page = lxml.html.fromstring(body)
        seen += ["urn:uuid:" + a.get("id").removeprefix("story-") for a in page.xpath("//main/article")]
        older = page.xpath("//nav/a[@rel='next']/@href")
        newer = page.xpath("//nav/a[@rel='prev']/@href")
        assert bool(newer) == (pages > 0)
        path = older[0].removeprefix("http://digest.test") if older else None
        pages += 1
    assert pages == (len(everything) + 1) // 2
    anchors = [u.rsplit(":", 1)[-1] for u in everything]
    assert [u.rsplit(":", 1)[-1] for u in seen] == anchors
    # the other filters stay on the links
    status, _, body = served.get("/?limit=1&q=Zhao")
    assert lxml.html.fromstring(body).xpath("//nav/a[@rel='next']/@href") == [
        "http://digest.test/?q=Zhao&limit=1&offset=1"
    ]


def test_stories_and_pages_are_made_once_until_the_stories_change(served):
    """The API and the story pages are served from memory, with an ETag, until the stored stories change."""
    import sqlalchemy as sa
    from helpers import wait_until

    listed = get_json(served, "/api/stories")["stories"]
    seed = next(s for s in listed if any(a["id"] == WIRE_ORIGINAL for a in s["articles"]))
    paths = ("/api/stories", f"/api/stories/{seed['id']}", f"/story/{seed['id']}")
    tags = {}
    for path in paths:
        status, headers, _ = served.get(path)
        assert status == 200 and headers["etag"] and headers["last-modified"], path
        tags[path] = headers["etag"]
        assert served.get(path, {"If-None-Match": headers["etag"]})[0] == 304, path
    engine = sa.create_engine(served.db.url)
    try:
        with engine.begin() as conn:
            # a title changed behind the server's back, the stories' version unchanged: the answers kept are served
            conn.execute(
                sa.text("update articles set title = 'Renamed headline' where external_id = :id"), {"id": WIRE_ORIGINAL}
            )
        assert all(served.get(path)[2] == served.get(path)[2] for path in paths)
        assert "Renamed headline" not in served.get(paths[1])[2].decode()
        with engine.begin() as conn:
            # the story changes (what a new member or a second feed of an article does): every answer is made again
            conn.execute(
                sa.text("update stories set updated_at = :now where id = :id"),
                {"now": "2030-01-01 00:00:00+00:00", "id": seed["id"]},
            )
        assert wait_until(lambda: "Renamed headline" in served.get(paths[1])[2].decode(), timeout=30)
        for path in paths:
            status, headers, body = served.get(path, {"If-None-Match": tags[path]})
            assert status == 200 and headers["etag"] != tags[path] and b"Renamed headline" in body, path
    finally:
        engine.dispose()
    # what is not found is answered as before, and not kept
    assert served.get("/api/stories/no-such-story")[0] == 404
    assert served.get("/story/no-such-story")[0] == 404
