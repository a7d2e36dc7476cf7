"""The Atom and RSS digests pass the W3C Feed Validation Service with no error and no warning, after replaying the
seeds and after replaying the ECB+ development set.

The validator (github.com/w3c/feedvalidator) is not part of wiredesk: give a checkout of it in
WIREDESK_FEEDVALIDATOR, and in WIREDESK_FEEDVALIDATOR_PYTHON a Python with its requirements (lxml, html5lib,
rdflib; this test's own Python when unset). Without them the test skips. It runs
`benchmarks/validate_digest.py check`, which validates each file as if fetched from its own rel="self" URL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS
from helpers import wiredesk_cmd

ECBPLUS = ROOT.parent / "shared" / "datasets" / "ecbplus-dev.jsonl"
CONFIG = '[digest]\nbase_url = "http://localhost:8080/"\n'


def _validator() -> tuple[Path, str]:
    given = os.environ.get("WIREDESK_FEEDVALIDATOR")
    if not given:
        pytest.skip(
            "WIREDESK_FEEDVALIDATOR is not set (a checkout of github.com/w3c/feedvalidator validates the digests)"
        )
    path = Path(given)
    if not (path / "src" / "feedvalidator" / "__init__.py").is_file():
        pytest.skip(f"WIREDESK_FEEDVALIDATOR={given} is not a feedvalidator checkout (no src/feedvalidator)")
    return path, os.environ.get("WIREDESK_FEEDVALIDATOR_PYTHON") or sys.executable


def _ecbplus_corpus(out: Path) -> Path:
    """The ECB+ development set as a fixture corpus (benchmarks/digest_load.py: one feed per made-up outlet)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("digest_load", ROOT / "benchmarks" / "digest_load.py")
    assert spec and spec.loader
    digest_load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(digest_load)
    return digest_load.write_corpus(digest_load.read_jsonl(ECBPLUS), out)


@pytest.mark.parametrize("corpus", ["seeds", "ecbplus"])
def test_the_digests_pass_the_feed_validator(corpus, tmp_path):
    validator, python = _validator()
    if corpus == "ecbplus":
        if not ECBPLUS.is_file():
            pytest.skip(f"{ECBPLUS} is absent (the ECB+ development set, ../shared/datasets)")
        folder = _ecbplus_corpus(tmp_path / "corpus")
    else:
        folder = SEEDS
    (tmp_path / "wiredesk.toml").write_text(CONFIG)
    env = dict(
        os.environ,
        WIREDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'digest.db'}",
        XDG_CONFIG_HOME=str(tmp_path / "c"),
        XDG_DATA_HOME=str(tmp_path / "d"),
    )
    done = subprocess.run(
        [*wiredesk_cmd(), "replay", str(folder), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr
    files = []
    for fmt in ("atom", "rss"):
        path = tmp_path / f"digest.{fmt}"
        done = subprocess.run(
            [*wiredesk_cmd(), "digest", "--format", fmt, "-o", str(path)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        files.append(str(path))
    checked = subprocess.run(
        [python, str(ROOT / "benchmarks" / "validate_digest.py"), "check", str(validator), *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = checked.stdout + checked.stderr
    assert checked.returncode == 0, report
    assert report.count("No errors or warnings") == len(files), report
