"""The seed fixture corpus (seeds/): manifest, feeds, pages and texts agree with each other.

The replay loader serves every feed and page named in seeds/manifest.json; these tests make
sure what it serves is what the manifest promises, so that engine tests can trust the labels.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from datetime import datetime
from functools import cache
from pathlib import Path

import feedparser
import lxml.html
import pytest
import trafilatura

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_STORY = "zhao-leji-pyongyang"

# SHA-256 of the five verbatim seed articles as received; they must never be edited.
SEED_DIGESTS = {
    "000_3324a5df7957fe74": "669d902b8a2bd598c6f1f2bbe97aa99641b0859c27fc9b1d9662082a5d71495d",
    "001_d689609cb1ce60ea": "620aca29321c5365aae67a09970303c7be1b64eccd22fd7fa191d5950b4720e2",
    "002_98229fde4db4c0bb": "bb6d9108a18abab7f222f49ea6b482b1ef687a37bf91d69df53a995596dda3ee",
    "003_b9d0bec95eb41249": "24b9cad41de1df9dd878a17dc245bdc15ad7ff12da2b878a8b24322772f986b3",
    "004_fbc8137f2d954ad1": "d3c1a961966f0301e4da6b5451613a667d093cf3c4c0d1a8b4fc34dc81fec154",
}
FEED_KEYS = {"outlet", "url", "file", "format", "content", "folder"}
ARTICLE_KEYS = {"id", "kind", "outlet", "url", "title", "published", "text", "page", "feed", "copy_of", "story"}
SCRAPER_DATE_MARKER = re.compile(r"^date \d{4}-\d{2}-\d{2} ")
# Extraction settings the pipeline may use; comments are excluded because reader comments are
# not part of an article (trafilatura's default include_comments=True appends them on purpose).
EXTRACT_SETTINGS = {
    "precision": {"favor_precision": True, "include_comments": False},
    "balanced": {"include_comments": False},
}


@cache
def manifest() -> dict:
    return json.loads((SEEDS / "manifest.json").read_text(encoding="utf-8"))


def articles(kind: str | None = None) -> list[dict]:
    return [a for a in manifest()["articles"] if kind is None or a["kind"] == kind]


def by_id(article_id: str) -> dict:
    return next(a for a in articles() if a["id"] == article_id)


def norm(s: str) -> str:
    s = s.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'}))
    return re.sub(r"\s+", " ", s).strip()


def text_paragraphs(article: dict) -> list[str]:
    raw = (SEEDS / article["text"]).read_text(encoding="utf-8")
    lines = (SCRAPER_DATE_MARKER.sub("", line.strip()) for line in raw.splitlines())
    return [norm(line) for line in lines if line]


def words(s: str) -> list[str]:
    return re.findall(r"\w+", s.lower())


def shingles(s: str, k: int = 5) -> set[tuple[str, ...]]:
    w = words(s)
    return {tuple(w[i : i + k]) for i in range(len(w) - k + 1)}


def sentences(paragraph: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?\"])\s+(?=[A-Z(\"])", paragraph) if s]


def from_source(sentence: str, source: set[tuple[str, ...]]) -> bool:
    """A sentence comes from the source when most of its word trigrams occur there (a few words may differ)."""
    grams = shingles(sentence, 3)
    return bool(grams) and len(grams & source) >= 0.6 * len(grams)


@cache
def page(article_id: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring((SEEDS / by_id(article_id)["page"]).read_bytes())


def page_body(article_id: str) -> list[str]:
    """Paragraphs the page presents as the article body."""
    containers = page(article_id).xpath('//article//*[@itemprop="articleBody"]')
    assert len(containers) == 1, "one article body per page"
    paragraphs = containers[0].xpath(".//p[not(ancestor::figure or ancestor::aside)]")
    return [norm(p.text_content()) for p in paragraphs]


def region_texts(article_id: str, region: str) -> list[str]:
    nodes = page(article_id).xpath(f'//*[@data-region="{region}"]//*[self::p or self::li or self::h2]')
    return [t for t in (norm(n.text_content()) for n in nodes) if len(t) > 15]


@cache
def extracted(article_id: str, setting: str) -> str:
    html = (SEEDS / by_id(article_id)["page"]).read_text(encoding="utf-8")
    kwargs = EXTRACT_SETTINGS.get(setting, {})
    return norm(trafilatura.extract(html, **kwargs) or "")


# --------------------------------------------------------------------------- manifest


def test_manifest_shape():
    m = manifest()
    assert set(m) == {"feeds", "articles"}
    feeds, arts = m["feeds"], m["articles"]
    for feed in feeds:
        assert set(feed) == FEED_KEYS
        assert feed["format"] in {"rss", "atom"} and feed["content"] in {"summary", "full"}
        assert feed["folder"]
    assert len(feeds) == 7
    assert {f["format"] for f in feeds} == {"rss", "atom"}
    assert any(f["format"] == "rss" and f["content"] == "full" for f in feeds)
    assert any(f["content"] == "summary" for f in feeds)
    for key in ("url", "file", "outlet"):
        assert len({f[key] for f in feeds}) == len(feeds), f"feed {key} repeated"

    feed_outlet = {f["url"]: f["outlet"] for f in feeds}
    for a in arts:
        assert set(a) == ARTICLE_KEYS, a["id"]
        assert a["kind"] in {"seed", "copy", "control"}
        assert a["feed"] in feed_outlet and feed_outlet[a["feed"]] == a["outlet"]
        assert a["page"] == f"pages/{a['id']}.html"
        assert a["url"].startswith("https://") and a["title"]
        assert datetime.fromisoformat(a["published"]).utcoffset() is not None, "published needs an offset"
    for key in ("id", "url", "text", "page"):
        assert len({a[key] for a in arts}) == len(arts), f"article {key} repeated"
    for feed in feeds:
        assert 1 <= sum(a["feed"] == feed["url"] for a in arts) <= 4


def test_manifest_labels():
    seeds, copies, controls = articles("seed"), articles("copy"), articles("control")
    assert sorted(a["id"] for a in seeds) == sorted(SEED_DIGESTS)
    assert all(a["text"] == f"{a['id']}.txt" and a["copy_of"] is None for a in seeds)
    assert {a["story"] for a in seeds + copies} == {SEED_STORY}

    assert len(copies) == 2
    original = by_id("000_3324a5df7957fe74")
    for c in copies:
        assert c["copy_of"] == original["id"]
        assert c["outlet"] not in {s["outlet"] for s in seeds}
        assert datetime.fromisoformat(c["published"]) > datetime.fromisoformat(original["published"])

    assert len(controls) >= 8
    stories = [c["story"] for c in controls]
    assert len(set(stories)) == len(stories) and SEED_STORY not in stories
    assert all(c["copy_of"] is None and c["text"].startswith("made/") for c in controls)
    # Hard negatives need controls close in time to the seed week as well as far from it.
    days = [abs((datetime.fromisoformat(c["published"]).date() - datetime(2024, 4, 12).date()).days) for c in controls]
    assert min(days) <= 7 and max(days) >= 60


def test_seed_published_times_follow_the_texts():
    assert by_id("001_d689609cb1ce60ea")["published"] == "2024-04-13T21:10:00+09:00"
    assert by_id("003_b9d0bec95eb41249")["published"] == "2024-04-15T08:09:00+09:00"
    assert by_id("000_3324a5df7957fe74")["published"].startswith("2024-04-14T")


def test_every_named_file_exists():
    names = [f["file"] for f in manifest()["feeds"]]
    names += [a[key] for a in articles() for key in ("text", "page")]
    missing = [n for n in names if not (SEEDS / n).is_file()]
    assert not missing


def test_seed_files_are_verbatim():
    for a in articles("seed"):
        digest = hashlib.sha256((SEEDS / a["text"]).read_bytes()).hexdigest()
        assert digest == SEED_DIGESTS[a["id"]], f"{a['text']} differs from the original seed"


def test_outputs_match_build_script():
    spec = importlib.util.spec_from_file_location("seeds_build", SEEDS / "build.py")
    build = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = build  # dataclasses resolve their annotations through the module
    try:
        spec.loader.exec_module(build)
    finally:
        del sys.modules[spec.name]
    first, second = build.generate(), build.generate()
    assert first == second, "build is not deterministic"
    stale = [p for p, data in first.items() if (SEEDS / p).read_bytes() != data]
    assert not stale, f"checked-in outputs are out of date, run python seeds/build.py: {stale}"


# --------------------------------------------------------------------------- feeds


@pytest.mark.parametrize("feed", manifest()["feeds"], ids=lambda f: f["file"])
def test_feed_parses_and_lists_its_articles(feed):
    parsed = feedparser.parse((SEEDS / feed["file"]).read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if feed["format"] == "rss" else "atom10")
    assert parsed.feed.get("title") and parsed.feed.get("link") and parsed.feed.get("updated")

    expected = {a["url"]: a for a in articles() if a["feed"] == feed["url"]}
    assert sorted(e.link for e in parsed.entries) == sorted(expected)
    for entry in parsed.entries:
        article = expected[entry.link]
        assert entry.get("id") and entry.title == article["title"]
        published = datetime.fromisoformat(article["published"]).utctimetuple()
        assert entry.published_parsed[:6] == published[:6]
        assert entry.get("summary")
        if feed["content"] == "full":
            body = norm(lxml.html.fromstring(entry.content[0].value).text_content())
            assert all(p in body for p in page_body(article["id"]))
        else:
            assert "content" not in entry


# --------------------------------------------------------------------------- pages


@pytest.mark.parametrize("article", articles(), ids=lambda a: a["id"])
def test_page_matches_its_text(article):
    tree = page(article["id"])
    assert norm(tree.findtext(".//title")).startswith(norm(article["title"]))
    assert norm(tree.xpath("//article//h1")[0].text_content()) == norm(article["title"])
    assert tree.xpath('//meta[@property="article:published_time"]/@content') == [article["published"]]

    paras = text_paragraphs(article)
    body = page_body(article["id"])
    assert body and all(p in paras for p in body), "the page body is made of the text's paragraphs"
    assert [p for p in paras if p in body] == body, "in the text's order"
    if article["kind"] == "control":
        assert body == paras
    elif article["kind"] == "copy":
        assert body == paras[1:], "everything but the photo caption"
    else:  # a captured page: its headline, byline, caption and widgets are not body
        body_words = sum(len(words(p)) for p in body)
        assert body_words >= 0.7 * sum(len(words(p)) for p in paras)
    # Lines of a captured page that are not body (headline, byline, caption...) are still on the page.
    page_words = set(words(tree.body.text_content()))
    for p in paras:
        if p not in body:
            assert set(words(p)) <= page_words, p
    for region in ("nav", "cookie-banner", "share", "related", "newsletter", "comments", "footer"):
        assert tree.xpath(f'//*[@data-region="{region}"]'), f"page lacks its {region}"
    assert len(tree.xpath('//*[@data-region="nav"]//a')) >= 10
    assert len(region_texts(article["id"], "comments")) >= 3


@pytest.mark.parametrize("setting", ["default", *EXTRACT_SETTINGS])
@pytest.mark.parametrize("article", articles(), ids=lambda a: a["id"])
def test_extraction_recovers_body(article, setting):
    body = page_body(article["id"])
    out = extracted(article["id"], setting)
    assert body[0] in out and body[-1] in out
    found = sum(p in out for p in body)
    assert found >= 0.9 * len(body)
    for text in region_texts(article["id"], "cookie-banner"):
        assert text not in out


@pytest.mark.parametrize("setting", EXTRACT_SETTINGS)
@pytest.mark.parametrize("article", articles(), ids=lambda a: a["id"])
def test_extraction_leaves_out_chrome(article, setting):
    out = extracted(article["id"], setting)
    for region in ("comments", "related", "newsletter", "footer", "cookie-banner"):
        leaked = [t for t in region_texts(article["id"], region) if t in out]
        assert not leaked, f"{region} text extracted: {leaked}"


# --------------------------------------------------------------------------- texts


@pytest.mark.parametrize("copy", articles("copy"), ids=lambda a: a["id"])
def test_copies_derive_from_000(copy):
    original = text_paragraphs(by_id(copy["copy_of"]))
    copied = text_paragraphs(copy)
    source = " ".join(original)
    # Between the outlet's own photo caption and its trailing boilerplate, the story is 000's.
    copied_sentences = [s for p in copied[1:-1] for s in sentences(p)]
    derived = sum(from_source(s, shingles(source, 3)) for s in copied_sentences) / len(copied_sentences)
    assert derived >= 0.9, f"only {derived:.0%} of the sentences come from 000"
    edited = [p for p in copied[1:-1] if p not in original]
    assert 2 <= len(edited) <= len(copied) // 2, "lightly edited: a few paragraphs differ from 000"

    body = page_body(copy["id"])
    containment = len(shingles(" ".join(body)) & shingles(source)) / len(shingles(" ".join(body)))
    assert containment >= 0.75
    assert re.match(r"SEOUL, April 14 \(Yonhap\) [-—]+ ", body[0]), "dateline in front"
    assert body[-1] not in source, "trailing boilerplate"
    assert copied[0] not in original and re.search(r"\(Yonhap\)|\[YONHAP\]", copied[0]), "own photo caption"


def test_one_copy_is_truncated():
    original_body = len(text_paragraphs(by_id("000_3324a5df7957fe74"))) - 1  # minus its caption
    kept = sorted(len(page_body(c["id"])) - 1 for c in articles("copy"))  # minus the boilerplate
    assert kept == [round(0.6 * original_body), original_body]


@pytest.mark.parametrize("control", articles("control"), ids=lambda a: a["id"])
def test_controls_are_hard_negatives(control):
    text = " ".join(text_paragraphs(control))
    assert 150 <= len(words(text)) <= 350
    shared_names = [
        "North Korea",
        "China",
        "Kim Jong",
        "Pyongyang",
        "Zhao Leji",
        "Xi Jinping",
        "Choe",
        "KCNA",
        "Russia",
        "Putin",
    ]
    assert sum(name in text for name in shared_names) >= 2
    # Shared vocabulary, but none of the seed story's phrasing.
    for seed in articles("seed") + articles("copy"):
        seed_text = shingles(" ".join(text_paragraphs(seed)))
        assert len(shingles(text) & seed_text) / len(shingles(text)) < 0.05, seed["id"]
