"""Bad input from the command line or the config: one clear line, exit code 2, nothing written."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import one_line


def test_malformed_config(tmp_path, wiredesk):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[fetch\ntimeout = 3\n")
    code, out, err = wiredesk("--config", cfg, "stories")
    assert code == 2
    assert "bad.toml" in one_line(err) and "TOML" in err
    assert not (tmp_path / "data-home").exists(), "nothing written"


def test_unknown_config_key(tmp_path, wiredesk):
    cfg = tmp_path / "wiredesk.toml"
    cfg.write_text("[fetch]\ntimout = 3\n")
    code, out, err = wiredesk("stories")  # found as ./wiredesk.toml
    assert code == 2
    line = one_line(err)
    assert "fetch.timout" in line and "timeout" in line


def test_wrong_type_in_config(tmp_path, wiredesk):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = "eighty"\n')
    code, _, err = wiredesk("--config", cfg, "stories")
    assert code == 2 and "server.port" in one_line(err)


def test_missing_config_file(tmp_path, wiredesk):
    code, _, err = wiredesk("--config", tmp_path / "nope.toml", "stories")
    assert code == 2 and "nope.toml" in one_line(err)


def test_example_config_is_complete_and_valid():
    from daemon.config import SCHEMA, parse

    text = (ROOT / "config.example.toml").read_text()
    parse(text)
    # every key is documented (present, possibly commented out) in its section
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in text
        for key in keys:
            assert f"\n{key} =" in text or f"\n# {key} =" in text, f"{section}.{key} missing from config.example.toml"


def test_unreachable_database(wiredesk, monkeypatch):
    monkeypatch.setenv("WIREDESK_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = wiredesk("stories")
    assert code == 2
    line = one_line(err)
    assert "cannot open database" in line and "127.0.0.1:1" in line


def test_bad_database_url(wiredesk, monkeypatch):
    monkeypatch.setenv("WIREDESK_DATABASE_URL", "mysql://x@y/z")
    code, _, err = wiredesk("stories")
    assert code == 2 and "only sqlite and postgresql" in one_line(err)


def test_bad_argument_is_one_line(wiredesk):
    with pytest.raises(SystemExit) as exc:
        wiredesk("digest", "--format", "pdf")
    assert exc.value.code == 2


def test_feed_url_must_be_http(db_url, wiredesk):
    code, _, err = wiredesk("feeds", "add", "file:///etc/passwd")
    assert code == 2 and "not an http(s) URL" in one_line(err)
    code, out, _ = wiredesk("feeds", "list", "--json")
    assert json.loads(out) == []


def test_cluster_bad_line(tmp_path, wiredesk):
    f = tmp_path / "corpus.jsonl"
    f.write_text(json.dumps({"id": "a", "title": "t", "text": "x"}) + "\n{not json\n")
    code, out, err = wiredesk("cluster", f)
    assert code == 2
    assert out == ""
    line = one_line(err)
    assert ("line 2" in line or "corpus.jsonl:2:" in line) and "corpus.jsonl" in line


def test_cluster_contract(tmp_path, wiredesk):
    seeds = sorted((ROOT / "seeds").glob("0*.txt"))
    f = tmp_path / "corpus.jsonl"
    with f.open("w") as fh:
        for p in seeds:
            fh.write(json.dumps({"id": p.stem, "text": p.read_text()}) + "\n")
    code, out, err = wiredesk("cluster", f)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in rows] == [p.stem for p in seeds]
    assert all(set(r) == {"id", "story", "copy_of"} for r in rows)
    assert len({r["story"] for r in rows}) == 1, "the five seeds are one story"
    assert all(r["copy_of"] is None for r in rows)
    # the throughput, on stderr at the end
    last = err.splitlines()[-1]
    assert last.startswith(f"wiredesk cluster: {len(seeds)} articles in ") and "articles/s" in last, err


def test_console_script_and_module_agree(tmp_path):
    env_bin = ROOT / ".venv" / "bin" / "wiredesk"
    exe = [str(env_bin)] if env_bin.exists() else [sys.executable, "-m", "daemon"]
    res = subprocess.run([*exe, "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.startswith("wiredesk ")
    res = subprocess.run([sys.executable, "-m", "daemon", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.startswith("wiredesk ")
