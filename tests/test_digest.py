"""The digest renderer: every format parses, round-trips ids/titles/links, and carries no active content."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone

import feedparser
import lxml.html
import pytest
from lxml import etree

from daemon.errors import InputError, StorageError
from daemon.publish.render import (
    FORMATS,
    DigestMeta,
    DigestSource,
    DigestStory,
    choose_primary,
    digest_url,
    filter_stories,
    render,
)

T0 = datetime(2024, 4, 13, 12, 0, tzinfo=timezone.utc)
KST = timezone(timedelta(hours=9))
META = DigestMeta(
    title="Desk <b>digest</b>", self_url="http://digest.test/feeds/digest.atom", home_url="http://digest.test/"
)


def src(article_id, outlet, minutes=0, copy_of=None, *, title=None, url="", summary=None, folder=None, published=...):
    return DigestSource(
        article_id=article_id,
        title=title if title is not None else f"Story from {outlet}",
        url=f"https://{outlet.lower().replace(' ', '')}.test/{article_id}" if url == "" else url,
        outlet=outlet,
        published=T0 + timedelta(minutes=minutes) if published is ... else published,
        copy_of=copy_of,
        summary=summary,
        folder=folder,
    )


def story(n, sources, *, copies=None, updated=None, primary=None):
    primary = primary or sources[0]
    return DigestStory(
        uuid=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        title=primary.title,
        primary=primary,
        sources=tuple(sources),
        created=T0,
        updated=updated or T0 + timedelta(hours=n),
        copies=sum(1 for s in sources if s.copy_of) if copies is None else copies,
    )


# Hostile feed text: markup that would run or restyle, escaped markup, CDATA end markers, XML-illegal characters.
HOSTILE_PRIMARY = src(
    "h1",
    "Wire <b onmouseover=alert(11)>Service</b>",
    title='Wire <script>alert("x1")</script>story ]]> with \x00\x08control\x1f chars',
    url="https://wire.test/story?id=1&lang=en",
    summary=(
        '<p onclick="alert(12)">First <a href="javascript:alert(13)">para</a> '
        "<img src=x onerror=alert(14)><style>body{display:none}</style>"
        '<a href="/more">more</a> ]]> <iframe src="https://evil.test/"></iframe>'
        '<a href="JaVaScRiPt:alert(15)">x</a><a href="data:text/html,alert(16)">y</a>\x07</p>'
    ),
    folder="News & <i>Politics</i>",
)
HOSTILE_COPY = src(
    "h2",
    "Daily\x0bPaper",
    minutes=90,
    copy_of="h1",
    title="Wire story &lt;script&gt;alert(17)&lt;/script&gt; copied",
    url="javascript:alert(18)",
    summary="<svg onload=alert(19)>svg</svg>",
    folder="News & Politics",
)
HOSTILE = story(1, [HOSTILE_PRIMARY, HOSTILE_COPY])
HOSTILE_TITLE = "Wire story ]]> with control chars"

WIRE = src("w1", "Yonhap", 0, summary="Zhao Leji met Kim Jong-un in Pyongyang.", folder="Korea")
COPY_A = src("w2", "Korea Herald", 30, "w1", folder="Korea")
COPY_B = src("w3", "Korea Times", 45, "w1", folder="Korea")
AP = src("w4", "AP", 60, title="Top Chinese official visits Pyongyang", folder="Wires")
NEWS = story(2, [WIRE, COPY_A, COPY_B, AP])
NO_LINK = story(3, [src("n1", "Radio Desk", 5, url=None, summary="plain text & <b>bold</b> 1 < 2")])
STORIES = [NEWS, HOSTILE, NO_LINK]

BAD_MARKERS = (
    "<script",
    "javascript:",
    "alert",
    "onerror",
    "onclick",
    "onload",
    "onmouseover",
    "<iframe",
    "<svg",
    "display:none",
    "data:text",
)
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@pytest.fixture(scope="module")
def outputs():
    return {fmt: render(STORIES, fmt, META) for fmt in FORMATS}


def embedded_html(fmt, data):
    """Every HTML fragment a reader would render from this output."""
    if fmt == "json":
        return [item["content_html"] for item in json.loads(data)["items"]]
    if fmt == "html":
        return [data.decode("utf-8")]
    root = etree.fromstring(data)
    if fmt == "atom":
        return [el.text for el in root.iter("{http://www.w3.org/2005/Atom}content")]
    return [el.text for el in root.iter("description")][1:]  # the first is the channel's plain description


# --- formats ------------------------------------------------------------------------------------------------------


def test_atom_round_trips_through_feedparser(outputs):
    parsed = feedparser.parse(outputs["atom"])
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Desk digest"
    assert parsed.feed.id == META.self_url
    assert parsed.feed.author == "wiredesk"
    assert parsed.feed.generator == "wiredesk"
    assert [link.href for link in parsed.feed.links if link.rel == "self"] == [META.self_url]
    assert [e.id for e in parsed.entries] == [s.uuid for s in STORIES]
    assert [e.title for e in parsed.entries] == ["Story from Yonhap", HOSTILE_TITLE, "Story from Radio Desk"]
    assert [e.link for e in parsed.entries[:2]] == ["https://yonhap.test/w1", "https://wire.test/story?id=1&lang=en"]
    assert not [link for link in parsed.entries[2].get("links", []) if link.rel == "alternate"]
    assert parsed.entries[0].updated == "2024-04-13T14:00:00Z"
    assert parsed.entries[0].published == "2024-04-13T12:00:00Z"
    assert parsed.entries[0].author == "Yonhap"
    assert parsed.entries[1].author == "Wire Service"
    assert [t.term for t in parsed.entries[0].tags] == ["Korea", "Wires"]
    assert parsed.entries[0].content[0].type == "text/html"


def test_rss_round_trips_through_feedparser(outputs):
    parsed = feedparser.parse(outputs["rss"])
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.link == META.home_url
    assert parsed.feed.generator == "wiredesk"
    assert [link.href for link in parsed.feed.links if link.rel == "self"] == ["http://digest.test/feeds/digest.rss"]
    assert [e.id for e in parsed.entries] == [s.uuid for s in STORIES]
    assert all(e.guidislink is False for e in parsed.entries)
    assert [e.title for e in parsed.entries] == ["Story from Yonhap", HOSTILE_TITLE, "Story from Radio Desk"]
    assert parsed.entries[1].link == "https://wire.test/story?id=1&lang=en"
    # pubDate is the story's last update, in RFC 822.
    assert parsed.entries[0].published == "Sat, 13 Apr 2024 14:00:00 GMT"
    assert parsed.entries[0].author == "Yonhap"
    assert b'isPermaLink="false"' in outputs["rss"]


def test_atom_and_rss_are_well_formed_xml_without_illegal_characters(outputs):
    for fmt in ("atom", "rss"):
        etree.fromstring(outputs[fmt])  # strict parser: raises on anything malformed
        assert not XML_ILLEGAL.search(outputs[fmt].decode("utf-8"))
        # A CDATA end marker from a feed survives as text, not as structure.
        assert b"]]&gt;" in outputs[fmt] and b"]]>" not in outputs[fmt]


def test_json_feed_has_the_required_and_recommended_fields(outputs):
    feed = json.loads(outputs["json"])
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "Desk digest"
    assert feed["home_page_url"] == META.home_url
    assert feed["feed_url"] == "http://digest.test/feeds/digest.json"
    assert feed["authors"] == [{"name": "wiredesk"}]
    assert [item["id"] for item in feed["items"]] == [s.uuid for s in STORIES]
    assert [item["title"] for item in feed["items"]] == ["Story from Yonhap", HOSTILE_TITLE, "Story from Radio Desk"]
    for item, st in zip(feed["items"], STORIES):
        assert isinstance(item["id"], str) and item["id"]
        assert isinstance(item["content_html"], str) and item["content_html"]
        assert datetime.fromisoformat(item["date_modified"]) == st.updated
        assert datetime.fromisoformat(item["date_published"]) == st.created
    assert feed["items"][0]["url"] == "https://yonhap.test/w1"
    assert "url" not in feed["items"][2]
    extension = feed["items"][0]["_wiredesk"]
    assert extension["copies"] == 2
    assert [(s["id"], s["copy_of"]) for s in extension["sources"]] == [
        ("w1", None),
        ("w2", "w1"),
        ("w3", "w1"),
        ("w4", None),
    ]
    assert feed["items"][1]["_wiredesk"]["sources"][1]["url"] is None  # the javascript: URL


def test_entry_body_lists_every_source_with_link_outlet_time_and_copies(outputs):
    for fmt in FORMATS:
        fragment = lxml.html.fragment_fromstring(embedded_html(fmt, outputs[fmt])[0], create_parent="div")
        if fmt == "html":
            fragment = fragment.xpath("//article")[0]
        text = fragment.text_content()
        assert "4 articles from 4 outlets, 2 copies." in text, fmt
        # the copies are folded under their original, each carrier one click away
        items = fragment.xpath(".//ul/li")
        assert [li.xpath("string(a[1]/@href)") for li in items] == ["https://yonhap.test/w1", "https://ap.test/w4"]
        first, ap = (li.text_content() for li in items)
        assert "Yonhap, 2024-04-13 12:00 UTC (primary source) — carried by Korea Herald, Korea Times" in first
        assert items[0].xpath("a/@href")[1:] == ["https://koreaherald.test/w2", "https://koreatimes.test/w3"]
        assert "AP, 2024-04-13 13:00 UTC" in ap and "copy" not in ap and "carried" not in ap
        assert "Zhao Leji met Kim Jong-un in Pyongyang." in text


def test_html_page_is_a_readable_document_without_scripts(outputs):
    doc = lxml.html.document_fromstring(outputs["html"])
    assert outputs["html"].startswith(b"<!DOCTYPE html>")
    assert doc.findtext(".//title") == "Desk digest"
    assert not doc.xpath("//script")
    assert len(doc.xpath("//style")) == 1 and doc.xpath("//style")[0].getparent().tag == "head"
    csp = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")[0]
    assert "default-src 'none'" in csp and "script-src" not in csp
    articles = doc.xpath("//article")
    assert len(articles) == 3
    assert articles[0].xpath("string(h2/a/@href)") == "https://yonhap.test/w1"
    assert articles[0].xpath("string(h2)") == "Story from Yonhap"
    assert articles[1].xpath("string(h2)") == HOSTILE_TITLE
    assert not articles[2].xpath("h2/a")  # no URL, no link
    feeds = doc.xpath("//link[@rel='alternate']/@href")
    assert feeds == [digest_url(META, f) for f in ("atom", "rss", "json")]


def test_empty_digest_renders_in_every_format():
    for fmt in ("atom", "rss"):
        parsed = feedparser.parse(render([], fmt, META))
        assert parsed.bozo == 0 and parsed.entries == []
        assert parsed.feed.updated_parsed.tm_year >= 2024  # not a placeholder date
    fixed = DigestMeta(updated=T0)
    assert b"<updated>2024-04-13T12:00:00Z</updated>" in render([], "atom", fixed)
    assert json.loads(render([], "json", META))["items"] == []
    assert b"No stories yet." in render([], "html", META)


def test_dates_are_converted_to_utc():
    local = story(
        5,
        [src("k1", "Dong-A", published=datetime(2024, 4, 15, 8, 9, tzinfo=KST))],
        updated=datetime(2024, 4, 15, 8, 9, tzinfo=KST),
    )
    assert b"<updated>2024-04-14T23:09:00Z</updated>" in render([local], "atom", META)
    assert b"<pubDate>Sun, 14 Apr 2024 23:09:00 GMT</pubDate>" in render([local], "rss", META)
    assert json.loads(render([local], "json", META))["items"][0]["date_modified"] == "2024-04-14T23:09:00Z"


def test_unknown_format_is_a_clear_error():
    with pytest.raises(InputError, match="unknown digest format 'pdf'; choose one of: atom, rss, json, html"):
        render(STORIES, "pdf", META)


def test_digest_urls_are_siblings_of_the_atom_url():
    assert digest_url(META, "atom") == "http://digest.test/feeds/digest.atom"
    assert digest_url(META, "html") == "http://digest.test/feeds/digest.html"
    assert digest_url(DigestMeta(self_url="https://x.test/digest?key=1"), "rss") == "https://x.test/digest.rss?key=1"
    # Any format's own URL, or the site root, names the same set of documents.
    assert digest_url(DigestMeta(self_url="http://digest.test/feeds/digest.rss"), "json") == (
        "http://digest.test/feeds/digest.json"
    )
    assert digest_url(DigestMeta(self_url="http://digest.test/"), "atom") == "http://digest.test/digest.atom"
    assert digest_url(DigestMeta(self_url="http://digest.test"), "rss") == "http://digest.test/digest.rss"


# --- untrusted text -----------------------------------------------------------------------------------------------


def test_no_active_content_reaches_any_output(outputs):
    for fmt, data in outputs.items():
        text = data.decode("utf-8")
        # Look at the bytes and at what a reader sees after undoing one and two levels of escaping.
        for layer in (text, html.unescape(text), html.unescape(html.unescape(text))):
            lowered = layer.lower()
            for marker in BAD_MARKERS:
                assert marker not in lowered, (fmt, marker)
        for fragment in embedded_html(fmt, data):
            tree = lxml.html.fragment_fromstring(fragment, create_parent="div")
            for el in tree.iter():
                assert el.tag not in {"script", "iframe", "svg", "img", "object", "embed"}, (fmt, el.tag)
                if fmt != "html":
                    assert el.tag != "style", fmt
                for name, value in el.attrib.items():
                    assert not name.lower().startswith("on"), (fmt, name)
                    if name in {"href", "src"}:
                        assert value.startswith(("https://", "http://")), (fmt, value)


def test_summary_links_are_kept_only_when_safe_and_made_absolute(outputs):
    body = embedded_html("atom", outputs["atom"])[1]
    hrefs = lxml.html.fragment_fromstring(body, create_parent="div").xpath("//blockquote//a/@href")
    assert hrefs == ["https://wire.test/more"]  # the relative link, resolved against the article
    assert "First" in body and "]]&gt;" in body
    assert "svg" not in body  # a copy's summary is not shown, and an <svg> is dropped with its content anyway


def test_plain_text_fields_are_stripped_of_markup(outputs):
    parsed = feedparser.parse(outputs["atom"])
    hostile = parsed.entries[1]
    assert [t.term for t in hostile.tags] == ["News & Politics"]
    assert "Daily Paper" in hostile.content[0].value
    # the copy is folded under its original: its outlet named, not linked (its URL was javascript:)
    original = lxml.html.fragment_fromstring(hostile.content[0].value, create_parent="div").xpath("//li")[0]
    assert original.xpath("string(em)") == "Daily Paper"
    assert "carried by Daily Paper" in original.text_content() and "Wire Service" in original.text_content()
    copy = json.loads(outputs["json"])["items"][1]["_wiredesk"]["sources"][1]
    assert copy["title"] == "Wire story copied" and copy["url"] is None


def test_summary_keeps_allowed_markup_and_escapes_bare_text(outputs):
    body = embedded_html("json", outputs["json"])[2]
    assert "plain text &amp; <b>bold</b> 1 &lt; 2" in body


def test_urls_are_percent_encoded_and_credentials_dropped():
    odd = story(
        6,
        [
            src("u1", "Odd", url="https://ex.test/a b?q=ü#frag"),
            src("u2", "Creds", url="https://user:pw@ex.test/x"),
            src("u3", "Ftp", url="ftp://ex.test/file"),
        ],
    )
    item = json.loads(render([odd], "json", META))["items"][0]
    assert item["url"] == "https://ex.test/a%20b?q=%C3%BC#frag"
    assert [s["url"] for s in item["_wiredesk"]["sources"]] == ["https://ex.test/a%20b?q=%C3%BC#frag", None, None]


# --- choosing the primary source ----------------------------------------------------------------------------------


def test_preferred_outlet_wins_case_insensitively_in_list_order():
    members = [WIRE, COPY_A, COPY_B, AP]
    assert choose_primary(members, ["korea times"]) is COPY_B
    assert choose_primary(members, ["Nobody", "  AP ", "Yonhap"]) is AP
    assert choose_primary(members, ["Nobody"]) is WIRE


def test_preferred_outlet_with_several_articles_gives_its_earliest():
    late = src("p2", "AP", 200)
    early = src("p1", "AP", 100)
    assert choose_primary([late, WIRE, early], ["ap"]) is early


def test_original_wire_copy_beats_an_earlier_independent_article():
    early_other = src("e0", "SCMP", -60)
    assert choose_primary([COPY_A, early_other, WIRE, COPY_B]) is WIRE


def test_most_copied_original_wins_among_several_copy_groups():
    first = src("g1", "Yonhap", 0)
    first_copy = src("g1c", "Herald", 5, "g1")
    second = src("g2", "Kyodo", 10)
    second_copies = [src("g2a", "Japan Times", 15, "g2"), src("g2b", "Asahi", 20, "g2")]
    assert choose_primary([first, first_copy, second, *second_copies]) is second


def test_without_copies_the_earliest_article_is_primary():
    unknown = src("t0", "Undated", published=None)
    late = src("t2", "Late", 120)
    early = src("t1", "Early", 60)
    assert choose_primary([unknown, late, early]) is early
    assert choose_primary([unknown]) is unknown
    # A copy whose original is not a member does not make anything an original.
    orphan_copy = src("t3", "Orphan", 30, "missing")
    assert choose_primary([late, orphan_copy]) is orphan_copy


def test_choose_primary_needs_members():
    with pytest.raises(StorageError, match="at least one member"):
        choose_primary([])


# --- filtering ----------------------------------------------------------------------------------------------------


def test_filter_counts_distinct_outlets():
    same_outlet = story(7, [src("d1", "AP", 0), src("d2", "ap", 10)])
    assert filter_stories([NEWS, same_outlet], min_outlets=2) == [NEWS]
    assert filter_stories([NEWS, same_outlet], min_outlets=5) == []


def test_filter_since_limit_and_order():
    result = filter_stories(STORIES, since=T0 + timedelta(hours=2))
    assert result == [NO_LINK, NEWS]  # updated 15:00 and 14:00; HOSTILE (13:00) is older
    assert filter_stories(STORIES, limit=2) == [NO_LINK, NEWS]
    assert filter_stories(STORIES, limit=0) == []
    assert filter_stories(STORIES) == [NO_LINK, NEWS, HOSTILE]


def test_filter_by_folder_and_feed_each_narrow():
    assert filter_stories(STORIES, folders=["korea"]) == [NEWS]
    assert filter_stories(STORIES, folders=["wires", "news & politics"]) == [NEWS, HOSTILE]
    assert filter_stories(STORIES, feeds=["Radio Desk", "AP"]) == [NO_LINK, NEWS]
    assert filter_stories(STORIES, folders=["Korea"], feeds=["Radio Desk"]) == []


def test_filter_rejects_a_negative_limit():
    with pytest.raises(InputError, match="limit must be 0 or more"):
        filter_stories(STORIES, limit=-1)


def test_many_copies_fold_into_named_carriers_and_a_count():
    copies = [src(f"c{i}", f"Paper {i}", 10 + i, "w1") for i in range(5)]
    body = render([story(9, [WIRE, *copies])], "json", META)
    html_body = json.loads(body)["items"][0]["content_html"]
    fragment = lxml.html.fragment_fromstring(html_body, create_parent="div")
    items = fragment.xpath(".//ul/li")
    assert len(items) == 1
    assert "carried by Paper 0, Paper 1 (+3)" in items[0].text_content()
    assert "6 articles from 6 outlets, 5 copies." in fragment.text_content()


def test_a_grown_story_says_what_is_new_first():
    grown = story(4, [WIRE, AP], primary=WIRE)
    from dataclasses import replace

    grown = replace(grown, newest=AP)
    for fmt in ("atom", "json"):
        first = lxml.html.fragment_fromstring(embedded_html(fmt, render([grown], fmt, META))[0], create_parent="div")
        opening = first.xpath("./div/*[1]")[0] if first.xpath("./div") else first[0]
        assert opening.text_content() == "New: AP, 2024-04-13 13:00 UTC — Top Chinese official visits Pyongyang", fmt
    # a story that did not grow beyond its primary source says nothing new
    alone = replace(story(5, [WIRE, AP], primary=WIRE), newest=WIRE)
    assert "New:" not in json.loads(render([alone], "json", META))["items"][0]["content_html"]


def test_the_lede_is_the_first_paragraph_that_is_not_the_headline():
    from storage.stories import lede

    title = "Kim Jong Un, China’s Zhao Leji seek enhanced cooperation"
    assert (
        lede(f"{title}\n\nNorth Korean leader Kim Jong Un met Zhao Leji.\n\nMore.", title)
        == "North Korean leader Kim Jong Un met Zhao Leji."
    )
    assert (
        lede("KIM JONG UN, CHINA'S ZHAO LEJI SEEK ENHANCED COOPERATION\nNorth Korean leader met Zhao.", title)
        == "North Korean leader met Zhao."
    )
    assert lede("A lede of its own.\n\nSecond.", title) == "A lede of its own."
    assert lede(title, title) == ""
    assert len(lede("word " * 500, title)) == 600


def test_the_headline_follows_the_primary_outlet_only():
    from daemon.publish.select import headline

    wire_update = src("w9", "Yonhap", 120, title="Five dead", summary=None)
    first = src("w1", "Yonhap", 0, title="Three dead")
    other = src("x1", "Tabloid", 180, title="Horror toll rises")
    sources = [first, other, wire_update]
    times = {id(s): s.published for s in sources}
    assert headline(sources, first, times) == "Five dead", "the primary outlet's newest word"
    assert headline([first, other], first, {id(first): first.published, id(other): other.published}) == "Three dead"


def test_outlets_are_publishers_not_feeds():
    from dataclasses import replace

    from daemon.publish.select import publisher_of

    assert publisher_of("https://www.koreaherald.com/view.php?ud=1") == "koreaherald.com"
    assert publisher_of("https://news.bbc.co.uk/x") == "bbc.co.uk"
    assert publisher_of("http://127.0.0.1:8080/a") is None and publisher_of(None) is None
    # two section feeds of one paper: one outlet, whatever the feeds are called
    national = replace(src("k1", "Korea Herald National", 0), publisher="koreaherald.com")
    world = replace(src("k2", "Korea Herald World", 5), publisher="koreaherald.com")
    other = replace(src("y1", "Yonhap", 10), publisher="yna.co.kr")
    two = story(7, [national, world, other])
    assert filter_stories([two], min_outlets=2) == [two] and filter_stories([two], min_outlets=3) == []
    assert "3 articles from 2 outlets" in json.loads(render([two], "json", META))["items"][0]["content_html"]
    # preferred_outlets names a publisher by its domain or by its name
    assert choose_primary([other, world, national], ["koreaherald.com"]) is national
    assert choose_primary([other, world, national], ["korea herald world"]) is world


def test_outlet_names_from_the_config():
    from daemon.config import parse
    from daemon.errors import ConfigError

    config = parse('[outlets]\n"KoreaHerald.com" = "The Korea Herald"\n"yna.co.kr" = "Yonhap"\n')
    assert config.outlets == {"koreaherald.com": "The Korea Herald", "yna.co.kr": "Yonhap"}
    for bad in (
        '[outlets]\n"not a domain" = "x"\n',
        '[outlets]\n"a.com" = ""\n',
        '[outlets]\n"a.com" = 3\n',
        "outlets = 1\n",
    ):
        with pytest.raises(ConfigError):
            parse(bad)


def test_the_page_gives_relative_times_and_the_configured_zone_on_hover():
    from dataclasses import replace

    from daemon.config import parse
    from daemon.errors import ConfigError

    meta = replace(META, timezone="Asia/Seoul", now=T0 + timedelta(hours=5))
    page = lxml.html.document_fromstring(render([NEWS], "html", meta))
    article = page.xpath("//article")[0]
    byline = article.xpath("./p")[0]
    shown = {t.text_content(): t.get("title") for t in byline.xpath(".//time")}
    # the primary source is five hours old, the story's update (T0 + 2 h) three
    assert shown == {"5 h ago": "2024-04-13 21:00 KST", "3 h ago": "2024-04-13 23:00 KST"}
    assert "Yonhap, 2024-04-13 21:00 KST (primary source)" in article.text_content()
    # the feeds keep UTC
    assert "2024-04-13 12:00 UTC" in json.loads(render([NEWS], "json", meta))["items"][0]["content_html"]
    assert parse('[digest]\ntimezone = "Europe/Paris"\n')["digest"]["timezone"] == "Europe/Paris"
    for bad in ("Mars/Olympus", "../../etc/passwd", ""):
        with pytest.raises(ConfigError):
            parse(f'[digest]\ntimezone = "{bad}"\n')


def test_one_link_through_two_feeds_is_one_article():
    from daemon.publish.select import to_digest_story
    from storage.records import Member, StoryView

    def member(n, key, source, url, copy_of=None):
        when = T0 + timedelta(minutes=n)
        return Member(
            article_id=n,
            key=key,
            title=f"title {key}",
            url=url,
            source=source,
            folder=None,
            feed_url=None,
            published=when,
            copy_of=n - 1 if copy_of else None,
            copy_of_key=copy_of,
            score=1.0,
            evidence={},
            joined_at=when,
            summary="",
            seen_at=when,
        )

    page = "https://www.koreaherald.com/view.php?ud=1"
    members = (
        member(1, "a", "Korea Herald National", page),
        member(2, "b", "Korea Herald World", page.replace("https://www.", "HTTPS://WWW.") + "#top", copy_of="a"),
        member(3, "c", "The Korea Times", "https://www.koreatimes.co.kr/1", copy_of="b"),
        member(4, "d", "Yonhap", "https://en.yna.co.kr/2"),
    )
    view = StoryView("s1", "urn:uuid:s1", "t", T0, T0, members, published=T0, updated=T0 + timedelta(minutes=4))
    story = to_digest_story(view, ())
    assert [s.article_id for s in story.sources] == ["a", "c", "d"]
    first = story.sources[0]
    assert first.feeds == ("Korea Herald National", "Korea Herald World") and first.copy_of is None
    # the copy of the folded article is a copy of the article it was folded into
    assert story.sources[1].copy_of == "a" and story.copies == 1
    assert "3 articles from 3 outlets, 1 copy." in json.loads(render([story], "json", META))["items"][0]["content_html"]
