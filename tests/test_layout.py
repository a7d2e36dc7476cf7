"""The layout's rules, checked: only storage/ talks SQL, and what it hands out are plain records."""

from __future__ import annotations

import ast
import dataclasses
from datetime import datetime, timezone

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

    now = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    assert feeds.add_feed(db, "https://example.org/a.xml", "A", "news", now)
    assert not feeds.add_feed(db, "https://example.org/a.xml", None, None, now)
    new = {"https://example.org/b.xml": (None, None), "https://example.org/a.xml": ("A", None)}
    assert feeds.add_new_feeds(db, new, now) == 1
    found = feeds.feeds_by_url(
        db, ["https://example.org/b.xml", "https://nowhere.example/", "https://example.org/a.xml"]
    )
    assert [f.url for f in found] == ["https://example.org/b.xml", "https://example.org/a.xml"]
    assert all(type(f) is FeedRecord for f in found)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].title = "changed"  # type: ignore[misc]
    assert found[1].status == "active" and found[1].folder == "news" and found[1].created_at == now
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


def _wiredesk_imports(path) -> set[str]:
    """The wiredesk modules a file imports (absolute imports of daemon.* and storage.*), wherever the import is."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.split(".")[0] in ("daemon", "storage"))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.update([node.module] if node.module.split(".")[0] in ("daemon", "storage") else [])
    return names


def test_storage_and_the_stages_share_only_a_vocabulary_that_depends_on_neither():
    # storage knows of the rest of wiredesk only the stored words and the error tree, and those two import nothing
    # else of wiredesk: neither side depends on the other through them
    shared = {"daemon.states", "daemon.errors"}
    used = {
        str(path.relative_to(ROOT)): sorted(n for n in _wiredesk_imports(path) if n.startswith("daemon"))
        for path in (ROOT / "storage").rglob("*.py")
    }
    assert {k: v for k, v in used.items() if set(v) - shared} == {}
    for name in shared:
        path = ROOT / (name.replace(".", "/") + ".py")
        assert _wiredesk_imports(path) <= shared, f"{name} imports {_wiredesk_imports(path) - shared}"


def test_storage_reads_no_clock():
    """Storage takes ``now`` from its caller: the time is the pipeline's (tests move it), never read in a query."""
    found = []
    for path in (ROOT / "storage").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            clock = isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today", "time", "monotonic")
            if clock and isinstance(node.value, ast.Name) and node.value.id in ("datetime", "date", "time"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_nothing_outside_storage_names_the_database_library():
    """Storage is one door: it raises StorageError, StorageConflict or StorageRefused, so no stage catches (or
    re-exports) SQLAlchemy's exceptions."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "daemon").rglob("*.py")
        if "SQLAlchemyError" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []
    import storage.db
    import storage.failures

    assert "SQLAlchemyError" not in storage.db.__all__ and "SQLAlchemyError" not in storage.failures.__all__


@pytest.mark.parametrize(
    ("raised", "expected", "failed"),
    [
        ("operational", "StorageError", True),
        ("integrity", "StorageConflict", False),
        ("data", "StorageRefused", False),
    ],
)
def test_the_database_library_s_errors_come_out_as_storage_errors(db, raised, expected, failed):
    import sqlalchemy.exc as sa_exc

    from daemon import errors

    cause = {
        "operational": sa_exc.OperationalError("UPDATE feeds", {}, Exception("database or disk is full\nmore")),
        "integrity": sa_exc.IntegrityError("INSERT INTO articles", {}, Exception("UNIQUE constraint failed")),
        "data": sa_exc.DataError("INSERT INTO entries", {}, Exception("invalid byte sequence")),
    }[raised]
    with pytest.raises(errors.StorageError) as info, db.session():
        raise cause
    error = info.value
    assert type(error).__name__ == expected and error.__cause__ is cause and error.database_failed is failed
    assert error.reason == str(cause.orig).splitlines()[0]
    assert str(error).startswith(f"database sqlite:///{db.url.database}: {error.reason} (")
    with db.session():  # the transaction was rolled back: the next one works
        pass


# Modules that still say an exception in one line their own way; they take daemon.errors.first_line when the work
# under way in them lands.
OWN_ONE_LINE_YET = {"daemon/fetch/client.py", "daemon/serve/http.py"}


def test_one_way_to_say_an_exception_in_one_line():
    import re

    pattern = re.compile(r"splitlines\(\)\[0\]|def _one_line|def storage_reason|def _reason\b")
    found = sorted(
        str(path.relative_to(ROOT))
        for root in ("daemon", "storage")
        for path in (ROOT / root).rglob("*.py")
        if "migrations" not in path.parts and pattern.search(path.read_text(encoding="utf-8"))
    )
    assert set(found) == OWN_ONE_LINE_YET, "use daemon.errors.first_line"


# ---- no import cycles --------------------------------------------------------------------------------------------

# Cycles between modules of the story engine, left until the engine's restructuring removes them.
KNOWN_CYCLES = [
    {"daemon.engine.analysis", "daemon.engine.terms"},
]


def _module_graph() -> dict[str, set[str]]:
    """Every module of daemon/ and storage/ and the modules it imports, at the top or inside a function alike: an
    import moved into a function hides a cycle from Python, not from this graph. (A package's __init__ counts as a
    module of its own; that importing a.b runs a/__init__.py first is left out.)"""
    modules = {}
    for root in ("daemon", "storage"):
        for path in (ROOT / root).rglob("*.py"):
            if "migrations" not in path.parts:
                modules[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # Imports under `if TYPE_CHECKING:` are read by the type checker only: they name a type, they never run.
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".")
                base = base if node.level else node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_no_import_cycles():
    cycles = _cycles(_module_graph())
    new = [sorted(c) for c in cycles if c not in KNOWN_CYCLES]
    assert new == [], f"modules that import each other (directly or round a loop): {new}"


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    graph = _module_graph()
    graph["daemon.states"].add("daemon.errors")  # as if states imported errors inside a function
    assert {"daemon.states", "daemon.errors"} in _cycles(graph)


# ---- typed records between the stages ---------------------------------------------------------------------------

# Records that still carry a dict of anything: a membership's evidence (its own type comes with the engine's new
# evidence format) and the datasketch storage settings handed through to the engine as they are.
UNTYPED_YET = {
    "Member.evidence",
    "StoryDecision.evidence",
    "StoryChange.evidence",
    "StoredChange.evidence",
    "PipelineSettings.lsh_storage",
}
# Fields holding a stored word that another module writes as a plain string for now (storage/decisions.py).
PLAIN_WORDS_YET = {"LockedEntry.state", "LockedEntry.text_source"}


def test_records_between_the_stages_are_typed():
    import typing
    from enum import StrEnum

    from daemon.pipeline import records as pipeline_records
    from storage import records as storage_records

    untyped, plain_words = set(), set()
    for module in (storage_records, pipeline_records):
        for cls in vars(module).values():
            if not (dataclasses.is_dataclass(cls) and isinstance(cls, type) and cls.__module__ == module.__name__):
                continue
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                shown = str(hints[f.name])
                if "dict[str, typing.Any]" in shown or shown == "typing.Any":
                    untyped.add(f"{cls.__name__}.{f.name}")
                word = f.name in ("status", "state", "source", "text_source", "extracted_from") or f.name.endswith(
                    ("_kind", "_state", "_source")
                )
                kinds = typing.get_args(hints[f.name]) or (hints[f.name],)
                stored_word = any(isinstance(k, type) and issubclass(k, StrEnum) for k in kinds)
                if word and f.name != "source" and not stored_word:
                    plain_words.add(f"{cls.__name__}.{f.name}")
    assert untyped - {"PipelineSettings.embedder"} == UNTYPED_YET
    assert plain_words == PLAIN_WORDS_YET
