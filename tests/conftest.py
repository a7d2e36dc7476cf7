import json
import os
import socket
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
    import uuid

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
