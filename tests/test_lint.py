"""`ruff check` as a test: it takes a fraction of a second, so a lint finding fails the suite like any other."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def _ruff() -> str | None:
    here = Path(sys.executable).with_name("ruff")
    return str(here) if here.exists() else shutil.which("ruff")


def test_ruff_check_is_clean():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    res = subprocess.run(
        [ruff, "check", "--no-cache", "--quiet", "."], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format_leaves_the_code_as_it_is():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    res = subprocess.run(
        [ruff, "format", "--check", "--no-cache", "--quiet", "."], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, "not laid out by `ruff format .`:\n" + res.stdout + res.stderr
