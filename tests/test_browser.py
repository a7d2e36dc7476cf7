"""The HTML digest in a real browser: headless Chromium, driven by Playwright, loads / from `wiredesk run`.

The seeds are replayed into a temporary database, `wiredesk run` serves it on loopback, and the page must show the
seed story with every one of its sources (outlet names and links), without the browser reporting any error (the
page's Content-Security-Policy would report blocked content). Skipped when Chromium or Playwright is absent; nothing
is installed at run time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS
from helpers import free_port, wait_until, wiredesk_cmd

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIRE_ORIGINAL = "000_3324a5df7957fe74"

if not Path(CHROMIUM).is_file():
    pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")


@pytest.fixture
def running(tmp_path):
    """`wiredesk run` on loopback over a database the seeds were replayed into; yields (base URL, env)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    (tmp_path / "wiredesk.toml").write_text(
        f'[digest]\nbase_url = "{base}"\ntitle = "Desk digest"\n[server]\nport = {port}\n'
    )
    env = dict(
        os.environ,
        WIREDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'wiredesk.db'}",
        XDG_CONFIG_HOME=str(tmp_path / "c"),
        XDG_DATA_HOME=str(tmp_path / "d"),
    )
    replay = subprocess.run(
        [*wiredesk_cmd(), "replay", str(SEEDS)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert replay.returncode == 0, replay.stderr
    proc = subprocess.Popen(
        [*wiredesk_cmd(), "run"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def healthy() -> bool:
            assert proc.poll() is None, f"wiredesk run exited: {proc.communicate()[1]}"
            try:
                with urllib.request.urlopen(base + "healthz", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        assert wait_until(healthy, timeout=60), "wiredesk run never answered /healthz"
        yield base, env
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


def test_the_seed_story_shows_with_its_sources(running, tmp_path):
    base, env = running
    shown = subprocess.run(
        [*wiredesk_cmd(), "story", WIRE_ORIGINAL, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    story = json.loads(shown.stdout)
    members = story["articles"]
    assert len({m["source"] for m in members}) >= 2, "the seed story has several outlets"
    with urllib.request.urlopen(base + "digest.json") as r:
        item = next(i for i in json.load(r)["items"] if i["id"] == story["uuid"])

    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            response = page.goto(base, wait_until="load")
            assert response is not None and response.status == 200
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            page.screenshot(path=str(tmp_path / "digest.png"), full_page=True)

            assert page.title() == "Desk digest"
            assert page.locator("h1").inner_text() == "Desk digest"
            anchor = story["uuid"].rsplit(":", 1)[-1]
            article = page.locator(f"article#story-{anchor}")
            assert article.is_visible()
            headline = article.locator("h2 a")
            assert headline.inner_text() == item["title"]
            assert headline.get_attribute("href") == item["url"]
            text = article.inner_text()
            assert f"{len(members)} articles from {len({m['source'] for m in members})} outlets" in text
            # one list item per source: its title linked to the article, then the outlet
            # one list item per original source, the outlets carrying a copy of it folded into it
            entries = {}
            for li in article.locator("ul > li").all():
                assert li.is_visible()
                first = li.locator("a").first
                entries[first.get_attribute("href")] = (first.inner_text(), li.inner_text())
            originals = [m for m in members if not m["copy_of"]]
            assert len(entries) == len(originals)
            for m in originals:
                title, line = entries[m["url"]]
                assert title == m["title"], m["id"]
                assert line.startswith(f"{m['title']} — {m['source']}, "), line
                carriers = [c["source"] for c in members if c["copy_of"] == m["id"]]
                if carriers:
                    assert "carried by " + ", ".join(carriers[:2]) in line, line
            # the subscribe links point at the feeds of the same service
            for name, path in (("Atom", "digest.atom"), ("RSS", "digest.rss"), ("JSON Feed", "digest.json")):
                assert page.get_by_role("link", name=name, exact=True).get_attribute("href") == base + path

            # filtered to stories told by several outlets: the seed story stays, single-outlet stories go
            with urllib.request.urlopen(base + "digest.json?min_outlets=2") as r:
                several = [i["id"] for i in json.load(r)["items"]]
            assert story["uuid"] in several
            page.goto(base + "?min_outlets=2", wait_until="load")
            shown_ids = [a.get_attribute("id") for a in page.locator("main > article").all()]
            assert shown_ids == ["story-" + i.rsplit(":", 1)[-1] for i in several]
            assert page.locator(f"article#story-{anchor}").is_visible()
            page.screenshot(path=str(tmp_path / "digest-several-outlets.png"), full_page=True)

            # the story's page, one click from its entry: every member with its outlet, time, link and why it joined
            page.goto(base, wait_until="load")
            page.locator(f"article#story-{anchor}").get_by_role("link", name="story page", exact=True).click()
            page.wait_for_load_state("load")
            assert page.url == base + "story/" + story["id"]
            assert page.locator("h1").inner_text() == item["title"]
            rows = page.locator("main ol > li")
            assert rows.count() == len(members)
            for m in members:
                row = page.locator(f"li#article-{m['id']}")
                assert row.is_visible()
                assert row.locator("a").first.get_attribute("href") == m["url"]
                line = row.inner_text()
                assert f"— {m['source']}, " in line and row.locator("small.why").inner_text()
                if m["copy_of"]:
                    original = next(o for o in members if o["id"] == m["copy_of"])
                    assert f"copy of {original['source']}" in line, line
            page.screenshot(path=str(tmp_path / "story.png"), full_page=True)
        finally:
            browser.close()
    assert problems == [], problems
    assert (tmp_path / "digest.png").stat().st_size > 10_000
    # WIREDESK_SCREENSHOT=docs/digest.png refreshes the picture in the README
    if os.environ.get("WIREDESK_SCREENSHOT"):
        shutil.copyfile(tmp_path / "digest-several-outlets.png", ROOT / os.environ["WIREDESK_SCREENSHOT"])
