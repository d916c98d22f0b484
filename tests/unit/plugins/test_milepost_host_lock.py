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


# --- repair_dpkg: dpkg made ready under the lock ------------------------------------------


def test_newest_archive_is_the_most_recent_deb_of_the_package(tmp_path: Path) -> None:
    import os

    older = tmp_path / "ruc-x_1.0_all.deb"
    newer = tmp_path / "ruc-x_1.1_all.deb"
    other = tmp_path / "ruc-xy_9.0_all.deb"
    for path, when in ((older, 100), (newer, 200), (other, 300)):
        path.write_text("")
        os.utime(path, (when, when))
    assert mhl.newest_archive(str(tmp_path), "ruc-x") == str(newer)
    assert mhl.newest_archive(str(tmp_path), "ruc-z") is None
    assert mhl.newest_archive(str(tmp_path / "missing"), "ruc-x") is None


class _Module:
    """Records the commands the repair runs and answers them from a script."""

    def __init__(self, answers: dict[str, list[tuple[int, str, str]]], check_mode=False):
        self.answers = answers
        self.check_mode = check_mode
        self.ran: list[list[str]] = []

    def run_command(self, argv, **_kwargs):
        self.ran.append(list(argv))
        queue = self.answers.get(argv[0] + " " + argv[1], [(0, "", "")])
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


PARAMS = {"dpkg_lock_paths": ["/var/lib/dpkg/lock"], "dpkg_lock_timeout": 0}


def test_dpkg_ready_changes_nothing_when_dpkg_is_clean() -> None:
    module = _Module({})
    assert mhl.dpkg_ready(module, PARAMS) == {"dpkg_audit": [], "dpkg_repaired": False}
    assert [argv[0] for argv in module.ran] == ["lslocks", "dpkg"]


def test_dpkg_ready_fails_naming_the_holder_of_a_dpkg_lock() -> None:
    module = _Module({"lslocks --noheadings": [(0, "812 apt-get /var/lib/dpkg/lock\n", "")]})
    with pytest.raises(AssertionError, match=r"^dpkg is locked after waiting 0 s, held by apt-get"):
        mhl.dpkg_ready(module, PARAMS)


def test_dpkg_ready_repairs_an_interrupted_run_and_reinstalls_half_installed() -> None:
    module = _Module(
        {
            "dpkg --audit": [
                (1, "The following packages are only half configured\n", ""),
                (0, "", ""),
            ],
            "dpkg --configure": [(1, "", "error")],
            "dpkg-query -W": [
                (0, "iHR\truc-x\t1.0\nii\tbash\t5.2\n", ""),
                (0, "ii\truc-x\t1.0\nii\tbash\t5.2\n", ""),
            ],
        }
    )
    done = mhl.dpkg_ready(module, PARAMS)
    assert done["dpkg_repaired"] is True and done["changed"] is True
    assert done["dpkg_audit"] == ["The following packages are only half configured"]
    reinstall = [argv for argv in module.ran if argv[:2] == ["apt-get", "install"]]
    assert reinstall and reinstall[0][-1] == "ruc-x"
    assert sum(argv[:2] == ["dpkg", "--configure"] for argv in module.ran) == 2


def test_packages_left_half_installed_together_are_installed_together(monkeypatch) -> None:
    """A killed upgrade of a library and its -minimal half: one dpkg run for both .debs
    (each needs the other), then apt for what they still need."""
    module = _Module(
        {
            "dpkg --audit": [(1, "half installed\n", ""), (0, "", "")],
            "dpkg-query -W": [
                (0, "iHR\tlibpython3.11-stdlib\t3.11.2-6+deb12u8\n"
                    "iHR\tlibpython3.11-minimal\t3.11.2-6+deb12u8\n", ""),
                (0, "ii\tlibpython3.11-stdlib\t3.11.2-6+deb12u9\n"
                    "ii\tlibpython3.11-minimal\t3.11.2-6+deb12u9\n", ""),
            ],
        }
    )  # fmt: skip
    archives = {
        "libpython3.11-stdlib": "/var/cache/apt/archives/libpython3.11-stdlib_u9.deb",
        "libpython3.11-minimal": "/var/cache/apt/archives/libpython3.11-minimal_u9.deb",
    }
    monkeypatch.setattr(mhl, "newest_archive", lambda _folder, package: archives.get(package))
    done = mhl.dpkg_ready(module, PARAMS)
    assert done["dpkg_repaired"] is True
    installs = [argv for argv in module.ran if argv[0] == "dpkg" and "--install" in argv]
    assert len(installs) == 1 and set(archives.values()) <= set(installs[0])
    assert any(argv[:3] == ["apt-get", "install", "--fix-broken"] for argv in module.ran)


def test_dpkg_ready_repairs_nothing_in_check_mode() -> None:
    module = _Module({"dpkg --audit": [(1, "half configured\n", "")]}, check_mode=True)
    assert mhl.dpkg_ready(module, PARAMS)["dpkg_repaired"] is False
    assert not any(argv[:2] == ["dpkg", "--configure"] for argv in module.ran)
