#!/usr/bin/env python3
"""Generate the seed fixture corpus from its texts and the metadata tables below.

Inputs: the five verbatim seed texts (``seeds/0*.txt``) and the hand-written control
texts (``seeds/made/2*.txt``). Outputs: the two wire-copy texts (``seeds/made/1*.txt``,
derived from seed 000), ``manifest.json``, one feed per outlet in ``feeds/`` and one
article page per article in ``pages/``.

    python seeds/build.py           # (re)write the outputs
    python seeds/build.py --check   # exit 1 if any output is missing or out of date

Only the standard library is used, and nothing depends on the clock or on dict/set
ordering, so two runs write identical bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

HERE = Path(__file__).resolve().parent
STORY = "zhao-leji-pyongyang"

# The scraper that captured seeds 000 and 003 prefixed their first line with the page's date.
SCRAPER_DATE_MARKER = re.compile(r"^date \d{4}-\d{2}-\d{2} ")


# --------------------------------------------------------------------------- outlets


@dataclass(frozen=True)
class Skin:
    """How one outlet's article pages look: enough variety that extraction is not tuned to one layout."""

    article_class: str
    body_open: str  # opening tag of the element holding the body paragraphs
    body_close: str
    nav: tuple[str, ...]
    cookie: str
    cookie_on_top: bool
    newsletter: str
    related_heading: str
    related: tuple[str, ...]
    comments_heading: str
    comments_note: str
    footer_links: tuple[str, ...]
    copyright: str
    accent: str
    promo: str = ""  # a sponsored label shown in the header, when the outlet has one


@dataclass(frozen=True)
class Outlet:
    key: str
    name: str
    site: str
    feed_url: str
    feed_file: str
    format: str  # "rss" | "atom"
    content: str  # "summary" | "full"
    folder: str
    language: str
    feed_title: str
    feed_description: str
    skin: Skin


OUTLETS: tuple[Outlet, ...] = (
    Outlet(
        key="yonhap",
        name="Yonhap",
        site="https://en.yna.co.kr/",
        feed_url="https://en.yna.co.kr/RSS/news.xml",
        feed_file="feeds/yonhap.xml",
        format="rss",
        content="summary",
        folder="Korea",
        language="en-us",
        feed_title="Yonhap News Agency - Latest News",
        feed_description="The latest news from Yonhap News Agency, South Korea's national news agency",
        skin=Skin(
            article_class="story-news",
            body_open='<div class="story-news article" id="articleWrap" itemprop="articleBody">',
            body_close="</div>",
            nav=(
                "National",
                "North Korea",
                "Politics",
                "Economy",
                "Market",
                "Sports",
                "Culture",
                "Entertainment",
                "Sci/Tech",
                "World",
                "Photos",
                "Videos",
                "Opinion",
                "Yonhap Plus",
            ),
            cookie=(
                "This website uses cookies to improve your browsing experience and to analyse how our "
                "services are used. By clicking Accept, you consent to the use of cookies in accordance "
                "with our cookie policy."
            ),
            cookie_on_top=False,
            newsletter=(
                "Get the Yonhap Morning Briefing: the day's top stories from Korea, delivered to your "
                "inbox every weekday at 7 a.m."
            ),
            related_heading="Most Viewed",
            related=(
                "Seoul shares close higher on chip rally",
                "BTS' Jin to hold fan meeting after discharge",
                "Gov't to expand child care subsidies for working parents",
                "Heavy rain advisory issued for southern regions",
            ),
            comments_heading="Comments",
            comments_note="Comments are reviewed before they are published.",
            footer_links=(
                "About Us",
                "Contact Us",
                "Terms of Use",
                "Privacy Policy",
                "Copyright Policy",
                "Advertise",
                "RSS",
                "Site Map",
            ),
            copyright="Copyright Yonhap News Agency. All rights reserved.",
            accent="#0b3d91",
        ),
    ),
    Outlet(
        key="herald",
        name="The Korea Herald",
        site="https://www.koreaherald.com/",
        feed_url="https://www.koreaherald.com/rss/national.xml",
        feed_file="feeds/koreaherald.xml",
        format="rss",
        content="full",
        folder="Korea",
        language="en",
        feed_title="The Korea Herald - National",
        feed_description="National news from The Korea Herald, Korea's leading English-language daily",
        skin=Skin(
            article_class="view_con",
            body_open='<div class="view_con_t" id="articleText" itemprop="articleBody">',
            body_close="</div>",
            nav=(
                "National",
                "Politics",
                "Social Affairs",
                "Foreign Affairs",
                "Defense",
                "North Korea",
                "Business",
                "Finance",
                "Life & Style",
                "Entertainment",
                "Sports",
                "World",
                "Opinion",
                "Podcast",
            ),
            cookie=(
                "We use cookies and similar technologies to personalise content and advertising and to "
                "measure our audience. You can change your choices at any time in Privacy Settings."
            ),
            cookie_on_top=True,
            newsletter=(
                "Sign up for the Herald Morning newsletter and start your day with the essential news from Korea."
            ),
            related_heading="More from The Korea Herald",
            related=(
                "Apartment prices in Seoul rise for fifth straight week",
                "Parliament passes special act on semiconductor support",
                "K-pop agency shares tumble after management dispute",
                "Hanbok-wearing visitors get free entry to royal palaces",
            ),
            comments_heading="Reader comments",
            comments_note="Please keep your comments respectful and on topic.",
            footer_links=(
                "Company Info",
                "Subscribe",
                "Advertise",
                "Contact Us",
                "Privacy Policy",
                "Youth Protection Policy",
                "Terms of Service",
                "RSS",
            ),
            copyright="Copyright Herald Corporation. All Rights Reserved.",
            accent="#1a1a1a",
            promo="피터빈트",
        ),
    ),
    Outlet(
        key="ap",
        name="AP",
        site="https://apnews.com/",
        feed_url="https://apnews.com/hub/asia-pacific/feed.atom",
        feed_file="feeds/ap.xml",
        format="atom",
        content="summary",
        folder="World",
        language="en",
        feed_title="AP News: Asia Pacific",
        feed_description="Asia Pacific news from The Associated Press",
        skin=Skin(
            article_class="Page-storyBody",
            body_open='<div class="RichTextStoryBody RichTextBody" itemprop="articleBody">',
            body_close="</div>",
            nav=(
                "World",
                "U.S.",
                "Politics",
                "Sports",
                "Entertainment",
                "Business",
                "Science",
                "Fact Check",
                "Oddities",
                "Be Well",
                "Newsletters",
                "Photography",
                "Video",
            ),
            cookie=(
                "We and our partners use cookies and process personal data such as unique identifiers "
                "to deliver and measure ads and content. Select Accept All to agree or Manage Choices "
                "to review your options."
            ),
            cookie_on_top=False,
            newsletter=(
                "The Morning Wire: our flagship newsletter breaks down the biggest headlines of the "
                "day. Sign up for free."
            ),
            related_heading="Recommended",
            related=(
                "Typhoon forces hundreds of flights to be canceled in Taiwan",
                "Japan's central bank holds rates steady as yen weakens",
                "Philippine coast guard says Chinese vessels blocked supply mission",
                "Indonesian volcano erupts again, forcing evacuations",
            ),
            comments_heading="Join the conversation",
            comments_note="Please read our comment policy before commenting.",
            footer_links=(
                "About",
                "Contact Us",
                "Careers",
                "Terms of Use",
                "Privacy Policy",
                "Cookie Settings",
                "Accessibility Statement",
                "AP Stylebook",
                "Newsletters",
            ),
            copyright="Copyright 2024 The Associated Press. All Rights Reserved.",
            accent="#e4002b",
        ),
    ),
    Outlet(
        key="donga",
        name="Dong-A Ilbo",
        site="https://www.donga.com/en/",
        feed_url="https://rss.donga.com/en/total.xml",
        feed_file="feeds/donga.xml",
        format="rss",
        content="summary",
        folder="Korea",
        language="en",
        feed_title="The Dong-A Ilbo",
        feed_description="English edition of The Dong-A Ilbo, news from Korea",
        skin=Skin(
            article_class="article_view",
            body_open='<section class="article_txt" itemprop="articleBody">',
            body_close="</section>",
            nav=(
                "Politics",
                "Economy",
                "Society",
                "International",
                "Culture",
                "Sports",
                "Editorials",
                "Opinion",
                "Photo",
                "Video",
                "Korean",
                "日本語",
                "中文",
            ),
            cookie=(
                "Our site uses cookies to provide you with a better service. If you continue to browse "
                "the site, we will assume you agree to our use of cookies."
            ),
            cookie_on_top=True,
            newsletter="Subscribe to the Dong-A Ilbo English newsletter for a weekly digest of Korean news.",
            related_heading="Most Popular",
            related=(
                "Editorial: Reform of the pension system cannot be delayed",
                "Samsung unveils new foldable phones in Paris",
                "Record number of foreign tourists visit Jeju in spring",
                "Doctors' strike enters third month with no resolution in sight",
            ),
            comments_heading="Comments",
            comments_note="Comments that violate our community guidelines will be removed.",
            footer_links=(
                "About Dong-A",
                "Contact",
                "Terms of Service",
                "Privacy Policy",
                "Youth Policy",
                "Advertising",
                "RSS",
                "Sitemap",
            ),
            copyright="Copyright by dongA.com All rights reserved.",
            accent="#00589a",
        ),
    ),
    Outlet(
        key="scmp",
        name="South China Morning Post",
        site="https://www.scmp.com/",
        feed_url="https://www.scmp.com/rss/4/atom",
        feed_file="feeds/scmp.xml",
        format="atom",
        content="summary",
        folder="Asia",
        language="en",
        feed_title="South China Morning Post - China",
        feed_description="China news from the South China Morning Post",
        skin=Skin(
            article_class="article",
            body_open='<section class="article-body" data-qa="ArticleBody" itemprop="articleBody">',
            body_close="</section>",
            nav=(
                "News",
                "Hong Kong",
                "China",
                "Asia",
                "World",
                "Opinion",
                "Business",
                "Tech",
                "Lifestyle",
                "Culture",
                "Sport",
                "Podcasts",
                "Video",
                "Magazines",
            ),
            cookie=(
                "SCMP uses cookies and similar technologies to improve your experience, analyse site "
                "traffic and show you relevant advertising. Read our Privacy Policy to find out more."
            ),
            cookie_on_top=False,
            newsletter=(
                "Get the China Briefing newsletter: the most important China stories of the week, "
                "explained by our correspondents."
            ),
            related_heading="Related posts",
            related=(
                "Hong Kong property prices slip for third month",
                "Chinese tech giants race to launch AI chatbots",
                "Beijing unveils measures to boost consumption ahead of holiday",
                "Taiwan opposition leader calls for cross-strait dialogue",
            ),
            comments_heading="Leave a Comment",
            comments_note="Comments are moderated and should relate to the article.",
            footer_links=(
                "About Us",
                "Contact Us",
                "Careers",
                "Advertise",
                "Terms & Conditions",
                "Privacy Policy",
                "FAQ",
                "Newsletters",
                "RSS Feed",
            ),
            copyright="Copyright © 2024 South China Morning Post Publishers Ltd. All rights reserved.",
            accent="#ffca05",
        ),
    ),
    Outlet(
        key="koreatimes",
        name="The Korea Times",
        site="https://www.koreatimes.co.kr/",
        feed_url="https://www.koreatimes.co.kr/www/rss/nation.xml",
        feed_file="feeds/koreatimes.xml",
        format="atom",
        content="full",
        folder="Korea",
        language="en",
        feed_title="The Korea Times - Nation",
        feed_description="News from Korea's oldest English-language daily",
        skin=Skin(
            article_class="article",
            body_open='<div class="article-body editor-p" id="startts" itemprop="articleBody">',
            body_close="</div>",
            nav=(
                "Opinion",
                "Politics",
                "Economy",
                "Business",
                "Tech",
                "Lifestyle",
                "Entertainment",
                "Sports",
                "World",
                "Photos",
                "Video",
                "K-Culture",
                "Bizlife",
            ),
            cookie=(
                "The Korea Times uses cookies to remember your preferences and to understand how our "
                "website is used. Continue browsing to accept, or open Cookie Settings to decline."
            ),
            cookie_on_top=True,
            newsletter=(
                "Never miss a story: subscribe to The Korea Times Daily Briefing and get the top "
                "headlines every evening."
            ),
            related_heading="Related stories",
            related=(
                "Seoul to open more public parking lots near subway stations",
                "Korean Air completes merger review in US",
                "Webtoon adaptations dominate streaming charts",
                "Police crack down on illegal gambling websites",
            ),
            comments_heading="Comments",
            comments_note="Log in to join the discussion.",
            footer_links=(
                "About Us",
                "Contact",
                "Subscribe",
                "Advertising",
                "Terms of Service",
                "Privacy Policy",
                "Youth Protection",
                "RSS",
            ),
            copyright="© The Korea Times. All rights reserved.",
            accent="#003876",
        ),
    ),
    Outlet(
        key="joongang",
        name="Korea JoongAng Daily",
        site="https://koreajoongangdaily.joins.com/",
        feed_url="https://koreajoongangdaily.joins.com/rss/allArticle.xml",
        feed_file="feeds/joongang.xml",
        format="rss",
        content="full",
        folder="Korea",
        language="en",
        feed_title="Korea JoongAng Daily",
        feed_description="All articles from Korea JoongAng Daily, the English edition of the JoongAng Ilbo",
        skin=Skin(
            article_class="article-content",
            body_open='<section id="article_body" class="article-body" itemprop="articleBody">',
            body_close="</section>",
            nav=(
                "National",
                "Politics",
                "Diplomacy",
                "North Korea",
                "Business",
                "Economy",
                "Industry",
                "Culture",
                "K-pop",
                "Sports",
                "Opinion",
                "Foreign Community",
                "Newsletter",
            ),
            cookie=(
                "This site uses cookies for analytics and personalised advertising. Please review our "
                "updated cookie notice and choose whether to accept non-essential cookies."
            ),
            cookie_on_top=False,
            newsletter=(
                "Subscribe to the Korea JoongAng Daily newsletter to get the day's biggest stories each morning."
            ),
            related_heading="Related Articles",
            related=(
                "Korea's exports rise for seventh straight month on chip demand",
                "Han River night market returns for the summer",
                "Government eases visa rules for skilled foreign workers",
                "Baseball league sets new attendance record",
            ),
            comments_heading="Reader Comments",
            comments_note="Comments are the views of readers, not of Korea JoongAng Daily.",
            footer_links=(
                "About Us",
                "Contact Us",
                "Subscription",
                "Advertisement",
                "Terms of Use",
                "Privacy Policy",
                "Newsletter",
                "RSS",
            ),
            copyright="Copyright © JoongAng Ilbo Co., Ltd. All Rights Reserved.",
            accent="#b5152b",
        ),
    ),
)
OUTLET_BY_KEY = {o.key: o for o in OUTLETS}

# Reader comments shown under the articles; each page takes three, chosen from its id.
COMMENTS: tuple[tuple[str, str], ...] = (
    ("hanriver88", "Same photo opportunity every year, and nothing changes for ordinary people."),
    ("PeninsulaWatcher", "Interesting timing given everything else going on in the region this month."),
    ("j.kwon", "I would like to see more analysis and fewer quotes from state media."),
    ("OldHandSeoul", "Been following this for thirty years. Patience is the only policy that ever worked."),
    ("maple_leaf_77", "Great reporting, thank you for the background paragraphs."),
    ("busan_dad", "Can someone explain why this matters for trade with us?"),
    ("skeptic_in_incheon", "Headlines like this never tell you what was actually agreed."),
    ("Mira L.", "My grandparents were born in the north. Stories like this are always bittersweet."),
    ("econ_nerd", "Follow the money: customs numbers tell you more than banquets do."),
    ("travellerJay", "Visited the border area last year, the contrast is hard to describe."),
    ("quietreader", "Thanks for keeping this free to read."),
    ("T. Okafor", "Worth reading alongside the coverage from other outlets for balance."),
)


# --------------------------------------------------------------------------- articles


@dataclass(frozen=True)
class Article:
    id: str
    kind: str  # "seed" | "copy" | "control"
    outlet: str  # key into OUTLET_BY_KEY
    url: str
    title: str
    published: str  # ISO 8601 with offset
    story: str
    author: str | None = None
    byline: str | None = None  # as printed on the page, when it differs from "By <author>"
    section: str = "North Korea"
    copy_of: str | None = None
    # Where the non-body lines of a captured page belong, keyed by the start of the line:
    # "chrome" lines are already part of the page template (headline, byline, site name...),
    # "caption" goes to the lead photo, "related" and "video" are widgets inside the body.
    roles: dict[str, str] = field(default_factory=dict)

    @property
    def text_path(self) -> str:
        return f"{self.id}.txt" if self.kind == "seed" else f"made/{self.id}.txt"


ARTICLES: tuple[Article, ...] = (
    # The five verbatim seeds. Headlines for 000 and 002 are not in their texts and were written
    # for the fixtures; the others are the texts' own headlines.
    Article(
        id="000_3324a5df7957fe74",
        kind="seed",
        outlet="yonhap",
        url="https://en.yna.co.kr/view/AEN20240414000300315",
        title="N. Korea steps up high-level exchanges with China, Russia",
        published="2024-04-14T10:05:00+09:00",
        story=STORY,
        roles={"This photo, carried by": "caption"},
    ),
    Article(
        id="001_d689609cb1ce60ea",
        kind="seed",
        outlet="herald",
        url="https://www.koreaherald.com/view.php?ud=20240413050093",
        title="China's top legislator meets N. Korean leader to deepen ties",
        published="2024-04-13T21:10:00+09:00",
        story=STORY,
        author="Yonhap",
        roles={
            "The Korea Herald": "chrome",
            "피터빈트": "chrome",
            "China's top legislator meets N. Korean leader": "chrome",
            "By Yonhap": "chrome",
            "Published : ": "chrome",
            "• Link copied": "chrome",
            "China's top legislator, Zhao Leji, and Choe Ryong-hae": "caption",
        },
    ),
    Article(
        id="002_98229fde4db4c0bb",
        kind="seed",
        outlet="ap",
        url="https://apnews.com/article/north-korea-china-zhao-leji-visit-5a3b5f1e8f1c4d7a9b2e6c0d4f8a1b37",
        title="Top Chinese official visits North Korea in the countries' highest-level meeting in 5 years",
        published="2024-04-12T02:15:00-04:00",
        story=STORY,
        section="Asia Pacific",
        roles={"Please read our comment policy": "chrome"},
    ),
    Article(
        id="003_b9d0bec95eb41249",
        kind="seed",
        outlet="donga",
        url="https://www.donga.com/en/article/all/20240415/4853981/1",
        title="Kim Jong Un, China’s Zhao Leji seek enhanced cooperation",
        published="2024-04-15T08:09:00+09:00",
        story=STORY,
        author="Jin-Woo Shin",
        byline="by Jin-Woo Shin niceshin@donga.com",
        section="Politics",
        roles={"Kim Jong Un, China’s Zhao Leji seek enhanced cooperation.": "chrome"},
    ),
    Article(
        id="004_fbc8137f2d954ad1",
        kind="seed",
        outlet="scmp",
        url="https://www.scmp.com/news/china/diplomacy/article/3258612/china-intensify-high-level-exchanges-north-korea-no-3-official-zhao-leji-says-marking-75-years-ties",
        title="China to ‘intensify high-level exchanges’ with North Korea, No 3 official Zhao Leji says in marking 75 years of ties",
        published="2024-04-11T22:17:00+08:00",
        story=STORY,
        section="Diplomacy",
        roles={
            "China to ‘intensify high-level exchanges’": "chrome",
            "‘At all levels’": "related",
            "02:43": "video",
            "North Korean leader Kim Jong-un says he has lawful right": "video",
            "04:28": "video",
            "North Korea releases 90-minute documentary": "video",
            "South China Morning Post": "chrome",
            "Related posts": "chrome",
            "Leave a Comment": "chrome",
        },
    ),
    # Two wire copies of 000, generated below (see COPIES).
    Article(
        id="100_koreatimes_copy",
        kind="copy",
        outlet="koreatimes",
        url="https://www.koreatimes.co.kr/www/nation/2024/04/103_372731.html",
        title="North Korea ramps up diplomacy with China, Russia as Zhao Leji wraps up visit",
        published="2024-04-14T11:32:00+09:00",
        story=STORY,
        author="Yonhap",
        copy_of="000_3324a5df7957fe74",
        roles={"North Korean leader Kim Jong-un (R)": "caption"},
    ),
    Article(
        id="101_joongang_copy",
        kind="copy",
        outlet="joongang",
        url="https://koreajoongangdaily.joins.com/news/2024-04-14/national/northKorea/Kim-Jongun-hosts-luncheon-for-Chinas-No-3-official-Zhao-Leji/2024041414200341",
        title="Kim Jong-un hosts luncheon for China's No. 3 official Zhao Leji",
        published="2024-04-14T14:20:00+09:00",
        story=STORY,
        author="Yonhap",
        copy_of="000_3324a5df7957fe74",
        roles={"Zhao Leji, left, chairman": "caption"},
    ),
    # Negative controls: other events sharing people, places and vocabulary with the seed story.
    Article(
        id="200_nk_hypersonic_irbm",
        kind="control",
        outlet="yonhap",
        url="https://en.yna.co.kr/view/AEN20240403000651315",
        title="N. Korea says it tested new hypersonic IRBM, Kim oversees launch",
        published="2024-04-03T09:41:00+09:00",
        story="nk-hypersonic-irbm-test",
    ),
    Article(
        id="201_putin_kim_summit",
        kind="control",
        outlet="ap",
        url="https://apnews.com/article/russia-north-korea-putin-kim-summit-treaty-9c1e2d7b44a04f6e8a5b3c2d1e0f9a87",
        title="Putin and Kim sign mutual defense pact at Pyongyang summit",
        published="2024-06-19T08:12:00-04:00",
        story="putin-kim-pyongyang-summit",
        author="Associated Press",
        section="Asia Pacific",
    ),
    Article(
        id="202_xi_france_state_visit",
        kind="control",
        outlet="scmp",
        url="https://www.scmp.com/news/china/diplomacy/article/3261651/xi-jinping-arrives-france-state-visit-marking-60-years-diplomatic-ties",
        title="Xi Jinping arrives in France for state visit marking 60 years of diplomatic ties",
        published="2024-05-06T23:05:00+08:00",
        story="xi-france-state-visit",
        section="Diplomacy",
    ),
    Article(
        id="203_rok_us_naval_drill",
        kind="control",
        outlet="herald",
        url="https://www.koreaherald.com/view.php?ud=20240416050781",
        title="S. Korea, US stage anti-submarine drills south of Jeju",
        published="2024-04-16T18:02:00+09:00",
        story="rok-us-anti-submarine-drill",
        author="Korea Herald",
        section="Defense",
    ),
    Article(
        id="204_choe_russian_delegation",
        kind="control",
        outlet="koreatimes",
        url="https://www.koreatimes.co.kr/www/nation/2024/04/103_372869.html",
        title="Choe Ryong-hae receives Russian parliamentary delegation in Pyongyang",
        published="2024-04-16T10:20:00+09:00",
        story="choe-russian-parliament-delegation",
        author="Korea Times",
    ),
    Article(
        id="205_cho_wang_beijing_talks",
        kind="control",
        outlet="joongang",
        url="https://koreajoongangdaily.joins.com/news/2024-05-13/national/diplomacy/Foreign-Minister-Cho-meets-Wang-Yi-in-Beijing/2024051322400512",
        title="Foreign Minister Cho meets Wang Yi in Beijing, agrees to boost high-level exchanges",
        published="2024-05-13T22:40:00+09:00",
        story="cho-wang-beijing-talks",
        author="Korea JoongAng Daily",
        section="Diplomacy",
    ),
    Article(
        id="206_nk_china_trade_q1",
        kind="control",
        outlet="joongang",
        url="https://koreajoongangdaily.joins.com/news/2024-04-18/business/economy/North-KoreaChina-trade-up-26-percent-in-first-quarter/2024041817050623",
        title="North Korea-China trade up 26 percent in first quarter",
        published="2024-04-18T17:05:00+09:00",
        story="nk-china-trade-q1",
        author="Yonhap",
        section="Economy",
    ),
    Article(
        id="207_kim_factory_inspection",
        kind="control",
        outlet="yonhap",
        url="https://en.yna.co.kr/view/AEN20240821000400315",
        title="Kim Jong-un inspects new local-industry factories, calls for faster regional development",
        published="2024-08-21T08:47:00+09:00",
        story="kim-local-factory-inspection",
    ),
    Article(
        id="208_zhao_leji_vuong_dinh_hue",
        kind="control",
        outlet="scmp",
        url="https://www.scmp.com/news/china/diplomacy/article/3258201/chinas-top-legislator-zhao-leji-meets-vietnams-parliament-chief-beijing",
        title="China’s top legislator Zhao Leji meets Vietnam’s parliament chief in Beijing",
        published="2024-04-08T20:15:00+08:00",
        story="zhao-leji-vuong-dinh-hue-talks",
        section="Diplomacy",
    ),
    Article(
        id="209_xi_kim_new_year_messages",
        kind="control",
        outlet="donga",
        url="https://www.donga.com/en/article/all/20240102/4628117/1",
        title="Kim Jong Un, Xi Jinping exchange New Year greetings, declare China-DPRK friendship year",
        published="2024-01-02T08:04:00+09:00",
        story="xi-kim-new-year-messages",
        author="Dong-A Ilbo",
        section="Politics",
    ),
)


# --------------------------------------------------------------------------- wire copies


@dataclass(frozen=True)
class CopyRecipe:
    """How one outlet republished seed 000: its own caption, dateline, edits and boilerplate."""

    id: str
    caption: str
    dateline: str
    edits: tuple[tuple[int, str, str], ...]  # (body paragraph index, old, new); each must match once
    keep_fraction: float  # share of the body paragraphs kept (a copy desk cutting the story short)
    straight_quotes: bool
    boilerplate: str


COPY_SOURCE = "000_3324a5df7957fe74"
COPIES: tuple[CopyRecipe, ...] = (
    CopyRecipe(
        id="100_koreatimes_copy",
        caption=(
            "North Korean leader Kim Jong-un (R) talks with Zhao Leji, chairman of the Standing "
            "Committee of China's National People's Congress, during a luncheon in Pyongyang on "
            "April 13, 2024, in this photo released by the Korean Central News Agency the next day. "
            "(For Use Only in the Republic of Korea. No Redistribution) (Yonhap)"
        ),
        dateline="SEOUL, April 14 (Yonhap) -- ",
        edits=(
            (0, "has been intensifying high-level", "has been stepping up high-level"),
            (1, "met for luncheon with", "had a luncheon with"),
            (8, "in nearly five years", "in almost five years"),
            (10, "Meanwhile, North Korea has accelerated", "Meanwhile, the North has accelerated"),
            (14, "Russia's Foreign Minister Choe Son-hui", "North Korea's Foreign Minister Choe Son-hui"),
        ),
        keep_fraction=1.0,
        straight_quotes=True,
        boilerplate="(END)",
    ),
    CopyRecipe(
        id="101_joongang_copy",
        caption=(
            "Zhao Leji, left, chairman of China's National People's Congress Standing Committee, "
            "shakes hands with North Korean leader Kim Jong-un in Pyongyang on Saturday. [YONHAP]"
        ),
        dateline="SEOUL, April 14 (Yonhap) — ",
        edits=(
            (1, "China's No. 3 official, Zhao Leji, who arrived", "Zhao Leji, China's No. 3 official, who arrived"),
            (
                1,
                "North Korea's state-run Korean Central News Agency reported on Sunday",
                "the North's state-run Korean Central News Agency (KCNA) reported Sunday",
            ),
            (2, "The KCNA reported that Kim had", "KCNA said Kim had"),
            (7, "have previously designated", "earlier designated"),
            (8, "Zhao's trip to Pyongyang is", "Zhao's trip is"),
        ),
        keep_fraction=0.6,
        straight_quotes=False,
        boilerplate=(
            "Copyright Yonhap News Agency. All rights reserved. This article may not be "
            "reproduced, redistributed or used without permission."
        ),
    ),
)


def paragraphs(text: str) -> list[str]:
    """Paragraphs of a fixture text: its non-empty lines (seed 002 has no blank lines between them)."""
    out = []
    for line in text.splitlines():
        line = SCRAPER_DATE_MARKER.sub("", line.strip())
        if line:
            out.append(line)
    return out


def make_copy(source: str, recipe: CopyRecipe) -> str:
    body = paragraphs(source)[1:]  # the source's first line is its photo caption
    for index, old, new in recipe.edits:
        if body[index].count(old) != 1:
            raise SystemExit(f"copy {recipe.id}: edit {old!r} does not match paragraph {index} exactly once")
        body[index] = body[index].replace(old, new)
    if recipe.straight_quotes:
        body = [p.translate(str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})) for p in body]
    body = body[: round(len(body) * recipe.keep_fraction)]
    body[0] = recipe.dateline + body[0]
    return "\n\n".join([recipe.caption, *body, recipe.boilerplate]) + "\n"


# --------------------------------------------------------------------------- page layout


@dataclass(frozen=True)
class Block:
    role: str  # "body" | "caption" | "related" | "video"
    lines: tuple[str, ...]


def layout(article: Article, text: str) -> list[Block]:
    """Assign every line of the text to a place on the page; consecutive video lines form one widget."""
    used = dict.fromkeys(article.roles, 0)
    blocks: list[Block] = []
    for line in paragraphs(text):
        role = "body"
        for prefix, r in article.roles.items():
            if line.startswith(prefix):
                role, used[prefix] = r, used[prefix] + 1
                break
        if role == "chrome":
            continue
        if role == "video" and blocks and blocks[-1].role == "video":
            blocks[-1] = Block("video", blocks[-1].lines + (line,))
        else:
            blocks.append(Block(role, (line,)))
    unused = [p for p, n in used.items() if n == 0]
    if unused:
        raise SystemExit(f"{article.id}: role prefixes match no line: {unused}")
    return blocks


def body_lines(blocks: list[Block]) -> list[str]:
    return [b.lines[0] for b in blocks if b.role == "body"]


def when(article: Article) -> datetime:
    return datetime.fromisoformat(article.published)


MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def display_date(article: Article) -> str:
    """The date as the outlet prints it (001 and 003 carry these exact forms in their texts)."""
    d = when(article)
    month = MONTHS[d.month - 1]  # not strftime("%B"): the output must not depend on the locale
    key = article.outlet
    if key == "herald":
        return f"Published : {month} {d.day}, {d.year} - {d:%H:%M}"
    if key == "donga":
        return f"{month}. {d.day:02d}, {d.year} {d:%H:%M}"
    if key == "ap":
        zone = {-4: "EDT", -5: "EST"}.get(int(d.utcoffset().total_seconds() // 3600), "UTC")
        hour = d.hour % 12 or 12
        return f"Updated {hour}:{d:%M} {'AM' if d.hour < 12 else 'PM'} {zone}, {month} {d.day}, {d.year}"
    if key == "scmp":
        hour = d.hour % 12 or 12
        return f"Published: {hour}:{d:%M}{'am' if d.hour < 12 else 'pm'}, {d.day} {month[:3]} {d.year}"
    if key == "joongang":
        return f"Published: {d.day:02d} {month[:3]}. {d.year}, {d:%H:%M}"
    if key == "koreatimes":
        return f"Posted : {d:%Y-%m-%d %H:%M}"
    return f"Published {d:%Y-%m-%d %H:%M} KST"


def pick_comments(article: Article) -> list[tuple[str, str]]:
    def rank(comment: tuple[str, str]) -> str:
        return hashlib.sha256(f"{article.id}\n{comment[0]}".encode()).hexdigest()

    return sorted(COMMENTS, key=rank)[:3]


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def e(s: str) -> str:
    return html.escape(s, quote=True)


def render_page(article: Article, outlet: Outlet, blocks: list[Block]) -> str:
    sk = outlet.skin
    byline = article.byline or (f"By {article.author}" if article.author else "")
    summary = summarize(body_lines(blocks))
    nav = "\n".join(f'        <li><a href="{outlet.site}{slug(n)}">{e(n)}</a></li>' for n in sk.nav)
    shared = quote(article.url, safe="")
    share = (
        '<div class="share-bar" data-region="share">\n'
        f'  <a class="share facebook" href="https://www.facebook.com/sharer/sharer.php?u={shared}">Facebook</a>\n'
        f'  <a class="share x" href="https://x.com/intent/post?url={shared}">X</a>\n'
        f'  <a class="share linkedin" href="https://www.linkedin.com/sharing/share-offsite/?url={shared}">LinkedIn</a>\n'
        f'  <a class="share email" href="mailto:?subject={quote(article.title)}&amp;body={shared}">Email</a>\n'
        '  <button type="button" class="share copy-link">Copy link</button>\n'
        '  <span class="toast" hidden>• Link copied</span>\n'
        "</div>"
    )
    cookie = (
        f'<div id="cookie-consent" class="cookie-banner" role="dialog" aria-label="Cookie consent" data-region="cookie-banner">\n'
        f"  <p>{e(sk.cookie)}</p>\n"
        '  <button type="button" class="accept">Accept all</button> '
        '<button type="button" class="manage">Manage preferences</button>\n'
        "</div>"
    )
    body_parts: list[str] = []
    for block in blocks:
        if block.role == "body":
            body_parts.append(f"<p>{e(block.lines[0])}</p>")
        elif block.role == "caption":
            body_parts.append(
                '<figure class="lead-photo">\n'
                f'  <img src="{outlet.site}photo/{article.id}.jpg" alt="" width="720" height="480">\n'
                f"  <figcaption>{e(block.lines[0])}</figcaption>\n"
                "</figure>"
            )
        elif block.role == "related":
            target = slug(block.lines[0])[:60].rstrip("-")
            body_parts.append(
                f'<aside class="read-more">\n  <a href="{outlet.site}news/{target}">{e(block.lines[0])}</a>\n</aside>'
            )
        elif block.role == "video":
            items = "\n".join(f"  <span>{e(line)}</span>" for line in block.lines)
            body_parts.append(f'<figure class="video-embed" data-player="inline">\n{items}\n</figure>')
    body = "\n".join("      " + part.replace("\n", "\n      ") for part in body_parts)
    related = "\n".join(f'        <li><a href="{outlet.site}news/{slug(h)}">{e(h)}</a></li>' for h in sk.related)
    comments = "\n".join(
        f'        <li class="comment" id="comment-{i + 1}">\n'
        f'          <div class="comment-author">{e(who)}</div>\n'
        f'          <p class="comment-text">{e(said)}</p>\n'
        "        </li>"
        for i, (who, said) in enumerate(pick_comments(article))
    )
    footer_links = " | ".join(f'<a href="{outlet.site}{slug(x)}">{e(x)}</a>' for x in sk.footer_links)
    promo = f'\n    <a class="promo-label" href="{outlet.site}promo">{e(sk.promo)}</a>' if sk.promo else ""
    author_meta = f'\n  <meta name="author" content="{e(article.author)}">' if article.author else ""
    ld_author = (
        f', "author": {{"@type": "Person", "name": {json.dumps(article.author, ensure_ascii=False)}}}'
        if article.author
        else ""
    )
    byline_html = f'\n        <p class="byline">{e(byline)}</p>' if byline else ""

    return f"""<!DOCTYPE html>
<html lang="{outlet.language.split("-")[0]}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{e(article.title)} | {e(outlet.name)}</title>
  <meta name="description" content="{e(summary)}">{author_meta}
  <meta property="og:type" content="article">
  <meta property="og:title" content="{e(article.title)}">
  <meta property="og:url" content="{e(article.url)}">
  <meta property="og:site_name" content="{e(outlet.name)}">
  <meta property="article:published_time" content="{article.published}">
  <meta property="article:section" content="{e(article.section)}">
  <link rel="canonical" href="{e(article.url)}">
  <link rel="alternate" type="application/{"atom" if outlet.format == "atom" else "rss"}+xml" title="{e(outlet.feed_title)}" href="{outlet.feed_url}">
  <style>
    body {{ font-family: Georgia, serif; margin: 0; color: #222; }}
    .site-header {{ border-bottom: 3px solid {sk.accent}; }}
    .{sk.article_class} h1 {{ font-size: 2rem; line-height: 1.2; }}
    .cookie-banner {{ position: fixed; bottom: 0; left: 0; right: 0; background: #fff; padding: 1rem; }}
    .share-bar a, .share-bar button {{ margin-right: .5rem; }}
  </style>
  <script type="application/ld+json">{{"@context": "https://schema.org", "@type": "NewsArticle", "headline": {json.dumps(article.title, ensure_ascii=False)}, "datePublished": "{article.published}"{ld_author}, "publisher": {{"@type": "Organization", "name": {json.dumps(outlet.name)}}}, "mainEntityOfPage": "{article.url}"}}</script>
  <script>
    window.dataLayer = window.dataLayer || [];
    window.dataLayer.push({{"pageType": "article", "section": {json.dumps(article.section)}, "articleId": "{article.id}"}});
  </script>
</head>
<body class="{outlet.key}">
{cookie if sk.cookie_on_top else ""}
  <header class="site-header">
    <a class="logo" href="{outlet.site}">{e(outlet.name)}</a>{promo}
    <nav class="main-nav" data-region="nav">
      <ul>
{nav}
      </ul>
    </nav>
    <form class="search" action="{outlet.site}search"><input type="search" name="q" placeholder="Search"><button>Search</button></form>
  </header>
  <main>
    <article class="{sk.article_class}">
      <header class="article-head">
        <p class="section-label"><a href="{outlet.site}{slug(article.section)}">{e(article.section)}</a></p>
        <h1>{e(article.title)}</h1>{byline_html}
        <p class="date"><time datetime="{article.published}">{e(display_date(article))}</time></p>
      </header>
      {share.replace(chr(10), chr(10) + "      ")}
      {sk.body_open}
{body}
      {sk.body_close}
      <div class="article-tags"><a href="{outlet.site}tag/{slug(article.section)}">#{e(article.section)}</a></div>
    </article>
    <aside class="related-stories" data-region="related">
      <h2>{e(sk.related_heading)}</h2>
      <ul>
{related}
      </ul>
    </aside>
    <aside class="newsletter-signup" data-region="newsletter">
      <h2>Newsletter</h2>
      <p>{e(sk.newsletter)}</p>
      <form action="{outlet.site}newsletter/subscribe" method="post"><input type="email" name="email" placeholder="Your email address"><button type="submit">Subscribe</button></form>
    </aside>
    <section id="comments" class="comments" data-region="comments">
      <h2>{e(sk.comments_heading)}</h2>
      <p class="comment-policy">{e(sk.comments_note)}</p>
      <ol class="comment-list">
{comments}
      </ol>
    </section>
  </main>
  <footer class="site-footer" data-region="footer">
    <p>{footer_links}</p>
    <p class="copyright">{e(sk.copyright)}</p>
  </footer>
{"" if sk.cookie_on_top else cookie}
  <script>
    document.querySelectorAll(".copy-link").forEach(function (b) {{
      b.addEventListener("click", function () {{ navigator.clipboard.writeText(location.href); }});
    }});
  </script>
</body>
</html>
"""


# --------------------------------------------------------------------------- feeds


def summarize(body: list[str], limit: int = 220) -> str:
    first = body[0]
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def content_html(body: list[str]) -> str:
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in body)


def render_rss(outlet: Outlet, items: list[tuple[Article, list[str]]]) -> str:
    newest = max(when(a) for a, _ in items)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">',
        "  <channel>",
        f"    <title>{xml_escape(outlet.feed_title)}</title>",
        f"    <link>{xml_escape(outlet.site)}</link>",
        f"    <description>{xml_escape(outlet.feed_description)}</description>",
        f"    <language>{outlet.language}</language>",
        f"    <copyright>{xml_escape(outlet.skin.copyright)}</copyright>",
        f"    <lastBuildDate>{format_datetime(newest)}</lastBuildDate>",
        f'    <atom:link href="{xml_escape(outlet.feed_url)}" rel="self" type="application/rss+xml"/>',
        "    <ttl>10</ttl>",
    ]
    for article, body in items:
        out += [
            "    <item>",
            f"      <title>{xml_escape(article.title)}</title>",
            f"      <link>{xml_escape(article.url)}</link>",
            f'      <guid isPermaLink="true">{xml_escape(article.url)}</guid>',
            f"      <pubDate>{format_datetime(when(article))}</pubDate>",
        ]
        if article.author:
            out.append(f"      <dc:creator>{xml_escape(article.author)}</dc:creator>")
        out += [
            f"      <category>{xml_escape(article.section)}</category>",
            f"      <description>{xml_escape(summarize(body))}</description>",
        ]
        if outlet.content == "full":
            out.append(f"      <content:encoded>{xml_escape(content_html(body))}</content:encoded>")
        out.append("    </item>")
    out += ["  </channel>", "</rss>", ""]
    return "\n".join(out)


def atom_time(d: datetime) -> str:
    return d.isoformat()


def render_atom(outlet: Outlet, items: list[tuple[Article, list[str]]]) -> str:
    newest = max(when(a) for a, _ in items)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{outlet.language}">',
        f"  <id>{xml_escape(outlet.feed_url)}</id>",
        f"  <title>{xml_escape(outlet.feed_title)}</title>",
        f"  <subtitle>{xml_escape(outlet.feed_description)}</subtitle>",
        f'  <link rel="self" type="application/atom+xml" href="{xml_escape(outlet.feed_url)}"/>',
        f'  <link rel="alternate" type="text/html" href="{xml_escape(outlet.site)}"/>',
        f"  <updated>{atom_time(newest)}</updated>",
        f"  <author><name>{xml_escape(outlet.name)}</name></author>",
        f"  <rights>{xml_escape(outlet.skin.copyright)}</rights>",
    ]
    host = re.sub(r"^https?://(www\.)?|/.*$", "", outlet.site)
    for article, body in items:
        d = when(article)
        out += [
            "  <entry>",
            f"    <id>tag:{host},{d:%Y-%m-%d}:{article.url.rsplit('/', 1)[-1].removesuffix('.html')}</id>",
            f"    <title>{xml_escape(article.title)}</title>",
            f'    <link rel="alternate" type="text/html" href="{xml_escape(article.url)}"/>',
            f"    <published>{atom_time(d)}</published>",
            f"    <updated>{atom_time(d)}</updated>",
        ]
        if article.author:
            out.append(f"    <author><name>{xml_escape(article.author)}</name></author>")
        out += [
            f'    <category term="{xml_escape(article.section)}"/>',
            f"    <summary>{xml_escape(summarize(body))}</summary>",
        ]
        if outlet.content == "full":
            out.append(f'    <content type="html">{xml_escape(content_html(body))}</content>')
        out.append("  </entry>")
    out += ["</feed>", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- build


def generate() -> dict[str, bytes]:
    """Every output file, by path relative to seeds/."""
    files: dict[str, bytes] = {}
    texts: dict[str, str] = {}
    source = (HERE / f"{COPY_SOURCE}.txt").read_text(encoding="utf-8")
    recipes = {r.id: r for r in COPIES}
    for article in ARTICLES:
        if article.kind == "copy":
            texts[article.id] = make_copy(source, recipes[article.id])
            files[article.text_path] = texts[article.id].encode("utf-8")
        else:
            texts[article.id] = (HERE / article.text_path).read_text(encoding="utf-8")

    bodies: dict[str, list[str]] = {}
    for article in ARTICLES:
        outlet = OUTLET_BY_KEY[article.outlet]
        blocks = layout(article, texts[article.id])
        bodies[article.id] = body_lines(blocks)
        files[f"pages/{article.id}.html"] = render_page(article, outlet, blocks).encode("utf-8")

    for outlet in OUTLETS:
        members = sorted((a for a in ARTICLES if a.outlet == outlet.key), key=when, reverse=True)
        items = [(a, bodies[a.id]) for a in members]
        render = render_rss if outlet.format == "rss" else render_atom
        files[outlet.feed_file] = render(outlet, items).encode("utf-8")

    manifest = {
        "feeds": [
            {
                "outlet": o.name,
                "url": o.feed_url,
                "file": o.feed_file,
                "format": o.format,
                "content": o.content,
                "folder": o.folder,
            }
            for o in OUTLETS
        ],
        "articles": [
            {
                "id": a.id,
                "kind": a.kind,
                "outlet": OUTLET_BY_KEY[a.outlet].name,
                "url": a.url,
                "title": a.title,
                "published": a.published,
                "text": a.text_path,
                "page": f"pages/{a.id}.html",
                "feed": OUTLET_BY_KEY[a.outlet].feed_url,
                "copy_of": a.copy_of,
                "story": a.story,
            }
            for a in ARTICLES
        ],
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale outputs instead of writing them")
    args = parser.parse_args(argv)
    files = generate()
    stale = [p for p, data in sorted(files.items()) if not (HERE / p).is_file() or (HERE / p).read_bytes() != data]
    if args.check:
        for p in stale:
            print(f"out of date: seeds/{p}", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        (HERE / p).parent.mkdir(parents=True, exist_ok=True)
        (HERE / p).write_bytes(files[p])
    print(f"{len(files)} files, {len(stale)} written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
