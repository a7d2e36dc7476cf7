"""Offline replay of a fixture corpus through the real pipeline.

A corpus is a folder with a ``manifest.json`` (see seeds/README.md) naming feeds and article pages by URL and the
files that stand in for them. The fetcher is handed a transport that serves those files, so the bytes go through
exactly the code the daemon runs; nothing touches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import InputError


@dataclass(frozen=True)
class FixtureFeed:
    url: str
    file: Path
    outlet: str
    folder: str | None


@dataclass(frozen=True)
class FixtureArticle:
    id: str
    url: str
    page: Path | None
    kind: str
    story: str | None
    copy_of: str | None


@dataclass(frozen=True)
class Corpus:
    root: Path
    feeds: tuple[FixtureFeed, ...]
    articles: tuple[FixtureArticle, ...]

    def routes(self) -> dict[str, Path]:
        routes = {f.url: f.file for f in self.feeds}
        routes.update({a.url: a.page for a in self.articles if a.page is not None})
        return routes

    def ids_by_url(self) -> dict[str, str]:
        return {a.url: a.id for a in self.articles}

    def name_of(self, url: str) -> str:
        """The fixture file behind a URL, for messages that a person can act on."""
        for f in self.feeds:
            if f.url == url:
                return str(f.file.relative_to(self.root))
        for a in self.articles:
            if a.url == url and a.page is not None:
                return str(a.page.relative_to(self.root))
        return url


def load_corpus(folder: str | Path) -> Corpus:
    root = Path(folder)
    manifest_path = root / "manifest.json"
    if not root.is_dir():
        raise InputError(f"replay: {root} is not a folder (give a fixture folder with a manifest.json, e.g. seeds/)")
    if not manifest_path.is_file():
        raise InputError(f"replay: {root} has no manifest.json (a fixture corpus needs one; see seeds/README.md)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        feeds = tuple(
            FixtureFeed(f["url"], root / f["file"], f.get("outlet") or f["url"], f.get("folder"))
            for f in manifest["feeds"]
        )
        articles = tuple(
            FixtureArticle(
                a["id"],
                a["url"],
                (root / a["page"]) if a.get("page") else None,
                a.get("kind", "article"),
                a.get("story"),
                a.get("copy_of"),
            )
            for a in manifest["articles"]
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"replay: {manifest_path} is not a valid manifest ({type(exc).__name__}: {exc}); see seeds/README.md"
        ) from exc
    for f in feeds:
        if not f.file.is_file():
            raise InputError(f"replay: {manifest_path} names a feed file {f.file} that does not exist")
    return Corpus(root, feeds, articles)
