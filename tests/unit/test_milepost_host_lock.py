"""Unit tests for plugins/modules/milepost_host_lock.py: lock logic in a temporary directory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import load_module

mhl = load_module("milepost_host_lock")
NOW = datetime(2025, 6, 1, 8, 0, 0, tzinfo=UTC)


def _acquire(path: Path, run_id: str, now: datetime = NOW, stale=(), check_mode=False, ttl=240):
    return mhl.acquire(str(path), run_id, "ops-01", 4242, now, ttl, list(stale), check_mode)


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_acquire_creates_the_lock_and_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "milepost" / "maintenance.lock"
    result = _acquire(path, "run-a")
    assert result["changed"] is True
    assert result["action"] == "acquired"
    assert _read(path) == {
        "run_id": "run-a",
        "controller": "ops-01",
        "pid": 4242,
        "acquired_at": "2025-06-01T08:00:00Z",
        "expires_at": "2025-06-01T12:00:00Z",
    }
    assert result["lock"] == _read(path)
    assert [p.name for p in path.parent.iterdir()] == ["maintenance.lock"]  # no temp file left


def test_acquire_again_by_the_same_run_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.lock"
    _acquire(path, "run-a")
    before = path.read_text()
    result = _acquire(path, "run-a", now=NOW + timedelta(minutes=5))
    assert (result["changed"], result["action"]) == (False, "held")
    assert path.read_text() == before


def test_another_run_is_refused_with_one_line_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.lock"
    _acquire(path, "run-a")
    with pytest.raises(mhl.LockRefused) as caught:
        _acquire(path, "run-b", now=NOW + timedelta(minutes=30))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        "host is locked by maintenance run run-a (controller ops-01, pid 4242) "
        "since 2025-06-01T08:00:00Z"
    )
    assert caught.value.holder["run_id"] == "run-a"
    assert _read(path)["run_id"] == "run-a"


def test_expired_lock_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.lock"
    _acquire(path, "run-a", ttl=60)
    later = NOW + timedelta(minutes=61)
    result = _acquire(path, "run-b", now=later)
    assert (result["changed"], result["action"]) == (True, "recovered")
    assert result["recovered_from"]["run_id"] == "run-a"
    assert result["recovered_from"]["stale_because"] == "expired at 2025-06-01T09:00:00Z"
    # The takeover is an override the ledger records (docs/SAFETY.md, invariant 4).
    assert result["milepost_overrides"] == [
        {
            "override": "lock_takeover",
            "from_run": "run-a",
            "reason": "expired at 2025-06-01T09:00:00Z",
        }
    ]
    assert _read(path)["run_id"] == "run-b"


def test_lock_of_an_ended_run_is_recovered_before_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.lock"
    _acquire(path, "run-a")
    result = _acquire(path, "run-b", now=NOW + timedelta(minutes=1), stale=["run-a"])
    assert result["action"] == "recovered"
    assert "has ended" in result["recovered_from"]["stale_because"]
    assert _read(path)["run_id"] == "run-b"


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"pid": 1}'])
def test_corrupt_lock_is_recovered(tmp_path: Path, content: str) -> None:
    path = tmp_path / "maintenance.lock"
    path.write_text(content)
    result = _acquire(path, "run-b")
    assert result["action"] == "recovered"
    assert result["recovered_from"]["stale_because"] == "the lock file is not a valid lock"
    assert _read(path)["run_id"] == "run-b"


def test_check_mode_reports_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.lock"
    result = _acquire(path, "run-a", check_mode=True)
    assert (result["changed"], result["action"]) == (True, "acquired")
    assert not path.exists()

    _acquire(path, "run-a", ttl=1)
    before = path.read_text()
    result = _acquire(path, "run-b", now=NOW + timedelta(hours=1), check_mode=True)
    assert result["action"] == "recovered"
    assert path.read_text() == before

    with pytest.raises(mhl.LockRefused):
        _acquire(path, "run-c", now=NOW, check_mode=True)


def test_release_only_by_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "maintenance.lock"
    assert mhl.release(str(path), "run-a", False)["action"] == "absent"
    _acquire(path, "run-a")

    other = mhl.release(str(path), "run-b", False)
    assert (other["changed"], other["action"]) == (False, "not_ours")
    assert other["held_by"]["run_id"] == "run-a"
    assert path.exists()

    checked = mhl.release(str(path), "run-a", True)
    assert (checked["changed"], checked["action"]) == (True, "released")
    assert path.exists()

    released = mhl.release(str(path), "run-a", False)
    assert (released["changed"], released["action"]) == (True, "released")
    assert not path.exists()


def test_lost_race_is_judged_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock created between our read and our link is not overwritten."""
    path = tmp_path / "maintenance.lock"
    real_write = mhl._write_exclusive

    def racing_write(target, lock):
        if not path.exists():
            path.write_text(json.dumps(mhl.new_lock("run-x", "ops-02", 7, NOW, 240)))
        return real_write(target, lock)

    monkeypatch.setattr(mhl, "_write_exclusive", racing_write)
    with pytest.raises(mhl.LockRefused, match="run-x"):
        _acquire(path, "run-b")
    assert _read(path)["run_id"] == "run-x"


def test_stale_reason() -> None:
    live = mhl.new_lock("run-a", "ops", 1, NOW, 10)
    assert mhl.stale_reason(live, NOW, set()) is None
    assert mhl.stale_reason(live, NOW + timedelta(minutes=10), set()).startswith("expired")
    assert mhl.stale_reason({"run_id": "run-a"}, NOW, set()) == "the lock has no valid expires_at"
