"""The fleet lock across controllers: with a PostgreSQL ledger, an emergency patch on one
controller (its own state directory, its own process) refuses while another controller
holds the lock, names the holder, and proceeds once the holder ends — however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from milepost.errors import Refused
from milepost.patching.fleet_lock import FleetLock

HOLD = textwrap.dedent(
    """
    import sys, time
    from milepost.patching.fleet_lock import FleetLock
    lock = FleetLock(sys.argv[1])
    lock.acquire({"run_id": sys.argv[2], "advisory_id": "RUC-2026-0101", "operator": "alice"})
    print("held", flush=True)
    time.sleep(600)
    """
)


# The shared fleet lock is PostgreSQL's (SQLite has one controller): these tests take only
# the PostgreSQL ledger of tests/ledger/conftest.py, rather than skipping the SQLite one.
pytestmark = pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)


@pytest.fixture
def pg_url(ledger_url: str) -> str:
    assert ledger_url.startswith("postgresql"), ledger_url
    return ledger_url


def controller(tmp_path: Path, name: str, url: str, run_id: str) -> subprocess.Popen[str]:
    """Another controller: its own process and state directory, holding the fleet lock."""
    env = {**os.environ, "MILEPOST_STATE_DIR": str(tmp_path / name)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, url, run_id], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def acquire_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> FleetLock:
    monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "here"))
    lock = FleetLock(url)
    lock.acquire({"run_id": "run-here", "advisory_id": "RUC-2026-0101", "operator": "bob"})
    return lock


def test_a_second_controller_is_refused_naming_the_holder_until_it_releases(
    pg_url, tmp_path, monkeypatch
):
    other = controller(tmp_path, "other", pg_url, "20261201T100000Z-aa11bb22")
    try:
        with pytest.raises(Refused) as refused:
            acquire_here(tmp_path, monkeypatch, pg_url)
        assert "20261201T100000Z-aa11bb22" in str(refused.value)
        assert "\n" not in str(refused.value)
        # The refused run left this controller's own lock free.
        monkeypatch.setenv("MILEPOST_STATE_DIR", str(tmp_path / "here"))
        local = FleetLock("sqlite:///unused")
        local.acquire({"run_id": "local"})
        local.release()
    finally:
        other.send_signal(signal.SIGTERM)
        other.wait(timeout=60)
    lock = acquire_here(tmp_path, monkeypatch, pg_url)
    lock.release()


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(pg_url, tmp_path, monkeypatch):
    other = controller(tmp_path, "other", pg_url, "20261201T110000Z-cc33dd44")
    other.kill()
    other.wait(timeout=60)
    # The server ends the killed holder's session; the lock goes with it.
    for _ in range(100):
        try:
            lock = acquire_here(tmp_path, monkeypatch, pg_url)
        except Refused:
            time.sleep(0.1)
            continue
        lock.release()
        return
    pytest.fail("the killed holder's advisory lock was never released")
