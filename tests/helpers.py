"""What many tests share: the command line as a process, a free port, one-line errors, and waiting on what a test
can observe (a row, a file, a process), never on how long the machine takes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from conftest import ROOT

POLL_SECONDS = 0.05  # how often the condition is looked at


def wiredesk_cmd() -> list[str]:
    """The `wiredesk` command as a process: the checkout's console script, else `python -m daemon`."""
    exe = ROOT / ".venv" / "bin" / "wiredesk"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "daemon"]


wiredesk_exe = wiredesk_cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    """The one line a user error prints (and no traceback)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Look at ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


@contextmanager
def stderr_on_failure(proc: subprocess.Popen, timeout: float = 60.0) -> Iterator[None]:
    """A failure inside the block carries the stderr of ``proc`` (a `wiredesk run`, stopped first to read it), so
    that a service that died, hung or logged an error says why."""
    try:
        yield
    except BaseException as exc:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        exc.add_note(f"the service's stderr (exit status {proc.returncode}):\n{err}")
        raise


def expire_leases(url: str) -> int:
    """Move every feed lease into the past, as if its time had run out: what waiting ``lease_seconds`` would do,
    without the wait. Returns how many leases there were."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as c:
            past = datetime.now(timezone.utc) - timedelta(days=1)
            return c.execute(
                sa.text("update feeds set lease_until = :past where lease_until is not null"), {"past": past}
            ).rowcount
    finally:
        engine.dispose()


def resolve_on_loopback(monkeypatch, names: dict[str, str]) -> None:
    """Host names answered with loopback addresses, as a resolver under the test's control would (``names``: host
    name to address): the rest of the exchange — connection, address check, HTTP — is the real one. Other names are
    resolved as usual."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        return real(names.get(str(name).lower().rstrip("."), host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
