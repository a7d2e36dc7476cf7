"""Search (`q=`): full text over titles and texts, on every digest format, the page, the API and `wiredesk stories`.

Over the replayed seeds on SQLite (FTS5) and PostgreSQL (tsvector), through real HTTP on loopback.
"""

from __future__ import annotations

import json

import feedparser
import pytest
from test_http import BASE_CONFIG, serve, served  # noqa: F401 (fixtures)

WIRE_ORIGINAL = "000_3324a5df7957fe74"
ZHAO_VIETNAM = "208_zhao_leji_vuong_dinh_hue"
NAVAL_DRILL = "203_rok_us_naval_drill"


def api(served, query: str) -> list[dict]:
    status, _, body = served.get("/api/stories?" + query)
    assert status == 200, body
    return json.loads(body)["stories"]


def members(stories: list[dict]) -> set[str]:
    return {a["id"] for s in stories for a in s["articles"]}


def test_q_finds_titles_and_texts_in_every_format(served):
    everything = api(served, "")
    zhao = api(served, "q=Zhao")
    # the seed story and the other Zhao Leji story, nothing else, newest first as always
    assert WIRE_ORIGINAL in members(zhao) and ZHAO_VIETNAM in members(zhao)
    assert len(zhao) == 2 < len(everything)
    assert [s["id"] for s in zhao] == [s["id"] for s in everything if s["id"] in {z["id"] for z in zhao}]
    # case does not matter; every word is needed; a word only in an article's text is found
    assert [s["id"] for s in api(served, "q=zhao")] == [s["id"] for s in zhao]
    assert [s["id"] for s in api(served, "q=Zhao+Vietnam")] == [s["id"] for s in zhao if ZHAO_VIETNAM in members([s])]
    assert members(api(served, "q=Nampho")) == {NAVAL_DRILL}
    assert api(served, "q=Zhao+Nampho") == []
    assert api(served, "q=wordthatappearsnowhere") == []
    # operators of the search engines are words like any other
    assert [s["id"] for s in api(served, "q=%22Zhao%22+%28Leji*%29+%5E%3A")] == [s["id"] for s in zhao]
    assert [s["id"] for s in api(served, "q=Zhao-Leji")] == [s["id"] for s in zhao]

    uuids = [s["uuid"] for s in zhao]
    for path in ("/digest.atom?q=Zhao", "/digest.rss?q=Zhao"):
        parsed = feedparser.parse(served.get(path)[2])
        assert parsed.bozo == 0 and [e.id for e in parsed.entries] == uuids, path
    status, _, body = served.get("/digest.json?q=Zhao")
    assert status == 200 and [i["id"] for i in json.loads(body)["items"]] == uuids
    status, _, page = served.get("/?q=Zhao")
    assert status == 200 and all(f"story-{u.rsplit(':', 1)[-1]}".encode() in page for u in uuids)
    # filters combine with the search
    assert [s["id"] for s in api(served, "q=Zhao&min_outlets=2")] == [s["id"] for s in zhao if len(s["outlets"]) >= 2]


def test_q_without_a_word_is_refused(served):
    for bad in ("q=", "q=%22%22", "q=" + "a" * 201, "q=a&q=b"):
        status, _, body = served.get("/digest.atom?" + bad)
        assert status == 400 and b"q" in body, bad


def test_stories_command_searches(seeded_url, wiredesk, capsys):
    code, out, err = wiredesk("stories", "--q", "Zhao", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert len(found) == 2 and WIRE_ORIGINAL in {a["id"] for s in found for a in s["articles"]}
    code, out, err = wiredesk("digest", "--format", "json", "--q", "Nampho")
    assert code == 0, err
    assert [s["id"] for i in json.loads(out)["items"] for s in i["_wiredesk"]["sources"]] == [NAVAL_DRILL]
    with pytest.raises(SystemExit) as exc:
        wiredesk("stories", "--q", "?!")
    assert exc.value.code == 2 and "at least one word" in capsys.readouterr().err
