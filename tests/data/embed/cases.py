"""Twenty articles for the sentence-embedding exactness test, written for wiredesk or built deterministically.

Each case is (name, title, text); the model input is ``embedding_input(title, text)``. ``reference.py`` turns them into
sentence-transformers' vectors (``reference.npz``); ``tests/test_embed.py`` checks wiredesk's against those.
"""

from __future__ import annotations

import random

_LONG = """The harbour authority said on Tuesday that the northern breakwater would close for eleven weeks while
engineers replace the storm gates installed in 1987, a project the council approved after two winters of flooding.

Ferry operators will move their evening departures to the southern quay, which can take two vessels at a time. The
authority expects delays of up to forty minutes during the first fortnight and has asked passengers to arrive early.

Local businesses along the waterfront welcomed the repairs but asked for compensation. "We lost a third of our
customers last February when the promenade flooded," said the owner of a café near the fish market.

The work is funded by a regional grant of 14.5 million euros and a loan from the national infrastructure bank.
Contractors will start by lowering a temporary cofferdam, then lift out the old gates with a floating crane.

A spokeswoman for the environmental agency said divers had surveyed the seabed and found no protected species in
the work area, though a colony of seals on the outer rocks would be monitored throughout the closure.

The council will publish weekly updates on its website and hold a public meeting at the town hall on 3 March."""

_WORDS = (
    "river",
    "council",
    "market",
    "storm",
    "minister",
    "budget",
    "election",
    "harbour",
    "railway",
    "school",
    "hospital",
    "festival",
    "court",
    "police",
    "weather",
    "energy",
    "farmers",
    "museum",
    "bridge",
    "airport",
)


def _ten_thousand_words() -> str:
    rng = random.Random(12)
    words = [rng.choice(_WORDS) for _ in range(10_000)]
    return "\n\n".join(" ".join(words[i : i + 100]).capitalize() + "." for i in range(0, 10_000, 100))


CASES: list[tuple[str, str, str]] = [
    ("headline", "Storm gates fail as floods hit the old harbour district", ""),
    ("long_article", "Harbour breakwater to close for eleven weeks of repairs", _LONG),
    ("body_only", "", _LONG.split("\n\n")[1]),
    ("empty_body", "Council approves a new cycle bridge over the river", ""),
    ("empty_everything", "", ""),
    ("whitespace_only", "   \t ", "\n\n   \n"),
    ("ten_thousand_words", "A very long text", _ten_thousand_words()),
    (
        "german",
        "Hochwasser: Stadt schließt den Hafen für elf Wochen",
        "Die Hafenbehörde teilte am Dienstag mit, dass der nördliche Wellenbrecher für Reparaturen gesperrt wird. "
        "Fähren legen abends am Südkai an.",
    ),
    (
        "spanish",
        "El ayuntamiento aprueba el presupuesto de 2025",
        "La votación terminó con diecisiete votos a favor y cuatro en contra; la oposición pidió más inversión en "
        "escuelas públicas y transporte.",
    ),
    (
        "korean",
        "서울시, 내년 예산 12조 원 편성",
        "서울시는 14일 교통과 주거 지원을 늘린 내년도 예산안을 시의회에 제출했다.",
    ),
    ("chinese", "暴雨导致多条铁路线路停运", "气象部门发布红色预警，提醒市民减少外出。"),
    ("japanese", "台風10号、九州に接近", "気象庁は大雨と暴風への警戒を呼びかけている。"),
    (
        "accents",
        "Crème brûlée festival draws record crowds in Besançon",
        "Organisers said naïve tourists and seasoned gourmands alike queued at the façade of the old théâtre.",
    ),
    (
        "punctuation_emoji",
        '!!! BREAKING ??? — "quotes" … (parentheses) [brackets] {braces} 🚨🔥🌍',
        "Emoji 😀😃😄 and symbols ©®™ § ¶ † ‡ • ‰ ′ ″ ‹ › « » ¿ ¡ — – ~ ^ | \\ / @ # $ % & * + = < >",
    ),
    (
        "all_caps",
        "PRIME MINISTER RESIGNS AFTER PARLIAMENT VOTE",
        "THE GOVERNMENT COLLAPSED LATE ON THURSDAY WHEN TWELVE COALITION MEMBERS VOTED AGAINST THE BUDGET.",
    ),
    (
        "numbers",
        "Q3 2024: revenue up 12.5% to $4.82bn; EPS 1.07 vs 0.98 expected",
        "Figures: 1,234,567 units; 98.6 °F; 3/4 of 2,000 = 1,500; +44 20 7946 0958; ISBN 978-3-16-148410-0; 10:45 GMT.",
    ),
    (
        "dateline_wire",
        "N. Korea fires ballistic missile into East Sea",
        "SEOUL, April 14 (Yonhap) -- North Korea fired a short-range ballistic missile on Sunday, the Joint Chiefs of "
        "Staff said.\n\n(END)",
    ),
    (
        "code_and_urls",
        "How to install the package",
        "Run `pip install --no-deps example==1.2.3` then see https://example.org/docs?page=2&lang=en#setup or "
        "mail help@example.org.",
    ),
    ("repeated_token", "", "news " * 400),
    (
        "mixed_scripts",
        "Moscow talks: Лавров meets Wang Yi (王毅) in Москва",
        "Ministers discussed trade, энергетика and 안보 over two days; a joint statement followed.",
    ),
]
