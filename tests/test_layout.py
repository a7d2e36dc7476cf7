"""The layout's rules, checked: only storage/ talks SQL, and what it hands out are plain records."""

from __future__ import annotations

import ast
import dataclasses

import pytest
from conftest import ROOT

# Modules still holding queries of their own, to be moved into storage/ (none, once the move is done).
NOT_MOVED_YET: set[str] = set()


def _imports(path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_only_storage_imports_sqlalchemy():
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "daemon").rglob("*.py")
        if "sqlalchemy" in _imports(path) and str(path.relative_to(ROOT)) not in NOT_MOVED_YET
    )
    assert offenders == [], f"SQL outside storage/: {offenders}"


def test_the_engine_is_a_library():
    # Of wiredesk it uses only the error tree and the worker-process helper: no config, no CLI, no storage.
    allowed = {"daemon.errors", "daemon.procs"}
    used: dict[str, set[str]] = {}
    for path in (ROOT / "daemon" / "engine").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.level == 2:
                    name = f"daemon.{node.module}"
                elif node.level == 0 and node.module.split(".")[0] in ("daemon", "storage"):
                    name = node.module
                else:
                    continue
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.split(".")[0] in ("daemon", "storage")]
                if not names:
                    continue
                name = names[0]
            else:
                continue
            if not name.startswith("daemon.engine") and name not in allowed:
                used.setdefault(path.name, set()).add(name)
    assert used == {}, f"the engine imports the rest of wiredesk: {used}"


@pytest.fixture
def db(tmp_path):
    from storage import open_database

    database = open_database(f"sqlite:///{tmp_path / 'w.db'}")
    yield database
    database.dispose()


def test_storage_hands_out_frozen_records(db):
    from storage import feeds, stats, stories
    from storage.records import FeedRecord, FeedSummary, StoreCounts

    assert feeds.add_feed(db, "https://example.org/a.xml", "A", "news")
    assert not feeds.add_feed(db, "https://example.org/a.xml")
    assert (
        feeds.add_new_feeds(db, {"https://example.org/b.xml": (None, None), "https://example.org/a.xml": ("A", None)})
        == 1
    )
    found = feeds.feeds_by_url(
        db, ["https://example.org/b.xml", "https://nowhere.example/", "https://example.org/a.xml"]
    )
    assert [f.url for f in found] == ["https://example.org/b.xml", "https://example.org/a.xml"]
    assert all(type(f) is FeedRecord for f in found)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].title = "changed"  # type: ignore[misc]
    assert found[1].status == "active" and found[1].folder == "news" and found[1].created_at.tzinfo is not None
    summaries = feeds.feed_summaries(db)
    assert [type(s) for s in summaries] == [FeedSummary, FeedSummary] and {s.entries for s in summaries} == {0}
    counts = stats.store_counts(db)
    assert counts == StoreCounts({"active": 2}, 0, 0, 0)
    assert stories.load_stories(db) == [] and stories.story_ids_by_update(db) == []
    assert tuple(stories.stories_version(db)) == (None, None)
    assert feeds.remove_feed(db, "https://example.org/a.xml") and not feeds.remove_feed(db, "https://example.org/a.xml")
    assert [f.url for f in feeds.all_feeds(db)] == ["https://example.org/b.xml"]


def test_every_public_exception_is_in_the_tree():
    """A user-facing error of any module is a WiredeskError (the CLI prints those as one line); the engine's keep
    ValueError as a second base for callers that catch it."""
    import importlib

    from daemon.errors import EngineError, WiredeskError

    found = []
    for root in ("daemon", "storage"):
        for path in (ROOT / root).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    cls = getattr(importlib.import_module(module), node.name)
                    if isinstance(cls, type) and issubclass(cls, BaseException):
                        found.append(cls)
    outside = [f"{cls.__module__}.{cls.__name__}" for cls in found if not issubclass(cls, WiredeskError)]
    assert outside == []
    names = {cls.__name__ for cls in found}
    assert {"FingerprintError", "CorpusError", "RefusedAddress", "EngineError", "ModelError"} <= names
    assert issubclass(EngineError, ValueError)
