import gc
import json
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test reads or writes the user's real config or database."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.delenv("WIREDESK_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    """The same test on an SQLite file and on PostgreSQL (a fresh schema each time; skipped where it is absent)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'wiredesk.db'}"
        monkeypatch.setenv("WIREDESK_DATABASE_URL", url)
        yield url
        return
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("WIREDESK_DATABASE_URL", url)
    try:
        yield url
    finally:
        # the databases a test opened in this process and left behind close their pooled connections now, not at
        # some later collection: a server shared by several test runs has few connections to spare
        gc.collect()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def count_rows(url: str) -> dict[str, int]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t: conn.execute(sa.text(f"select count(*) from {t}")).scalar()
                for t in ("feeds", "entries", "articles", "stories", "memberships")
            }
    finally:
        engine.dispose()


@pytest.fixture
def wiredesk(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from daemon.cli.main import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def manifest():
    return json.loads((SEEDS / "manifest.json").read_text())


def postgres_url() -> str | None:
    """PostgreSQL for tests (WIREDESK_TEST_POSTGRES, else 127.0.0.1:5432/test, trust auth), or None when absent."""
    url = os.environ.get("WIREDESK_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return url
    except OSError:
        return None


# ---- the seeds, replayed once per test session -------------------------------------------------------------------
# Replaying the seeds runs the whole pipeline (the engine, the semantic model): seconds on SQLite, more on a loaded
# PostgreSQL. Tests that need a database holding them get a copy of one replayed per session instead: an SQLite file
# copied with the backup API, a PostgreSQL database made from a template database.


def replay_seeds(cwd: Path, db_url: str) -> None:
    """`wiredesk replay seeds/` into the database at ``db_url``, as a user would run it."""
    exe = ROOT / ".venv" / "bin" / "wiredesk"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "daemon"]
    env = dict(os.environ, WIREDESK_DATABASE_URL=db_url, XDG_CONFIG_HOME=str(cwd / "c"), XDG_DATA_HOME=str(cwd / "d"))
    done = subprocess.run(
        [*command, "replay", str(SEEDS), "--json"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stories"], "the seeds make stories"


def copy_database(source: Path, target: Path) -> None:
    """An SQLite file copied; the backup API copies a consistent state whatever the WAL holds."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture(scope="session")
def seeds_db(tmp_path_factory) -> Path:
    """The seeds replayed once into an SQLite file; tests get copies (``copy_database``, ``seeded_url``)."""
    folder = tmp_path_factory.mktemp("seeds-db")
    replay_seeds(folder, f"sqlite:///{folder / 'seeds.db'}")
    return folder / "seeds.db"


def _postgres_admin():
    import sqlalchemy as sa

    base = postgres_url()
    assert base is not None
    return sa.create_engine(base, isolation_level="AUTOCOMMIT"), sa.make_url(base)


@pytest.fixture(scope="session")
def seeds_template(tmp_path_factory):
    """The seeds replayed once into a PostgreSQL database of their own, the template of each test's copy."""
    if postgres_url() is None:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import sqlalchemy as sa

    admin, base = _postgres_admin()
    name = "wiredesk_seeds_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        replay_seeds(tmp_path_factory.mktemp("seeds-pg"), base.set(database=name).render_as_string(False))
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def seeded_url(request, db_url, seeds_db, tmp_path, monkeypatch) -> Iterator[str]:
    """``db_url`` holding the replayed seeds: an SQLite file copied from ``seeds_db``, or on PostgreSQL a database
    made from ``seeds_template`` (WIREDESK_DATABASE_URL names it)."""
    if db_url.startswith("sqlite:///"):
        copy_database(seeds_db, Path(db_url.removeprefix("sqlite:///")))
        yield db_url
        return
    import sqlalchemy as sa

    template = request.getfixturevalue("seeds_template")
    admin, base = _postgres_admin()
    name = "t_seeds_" + uuid.uuid4().hex[:12]
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    url = base.set(database=name).render_as_string(False)
    monkeypatch.setenv("WIREDESK_DATABASE_URL", url)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
