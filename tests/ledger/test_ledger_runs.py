"""Runs: closing runs whose writer died, and the run/host queries."""

import os
import socket
import subprocess
import sys

import pytest
from ledger_helpers import sample_run

from milepost.errors import UserError
from milepost.ledger import (
    package_change,
    package_facts,
    process_start_time,
    run_ended,
    run_started,
    task_result,
)


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def start_ticks(pid):
    """Field 22 of /proc/<pid>/stat, read here on its own."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[19])


def test_process_start_time_reads_proc(tmp_path):
    mine = process_start_time(os.getpid())
    assert isinstance(mine, int) and mine > 0 and mine == start_ticks(os.getpid())
    # A command name with spaces and parentheses does not shift the fields.
    odd = tmp_path / "a) b c (d"
    odd.symlink_to(sys.executable)
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        theirs = process_start_time(child.pid)
        assert theirs == start_ticks(child.pid) and theirs >= mine
    finally:
        child.kill()
        child.wait()
    assert process_start_time(dead_pid()) is None


def test_stale_runs_are_closed_as_aborted(ledger):
    me = os.getpid()
    dead = run_started(playbook="dead.yml", pid=dead_pid())
    alive = run_started(playbook="alive.yml")
    reused = run_started(playbook="reused.yml")
    reused["body"]["pid_started"] = process_start_time(me) + 1  # same pid, another process
    elsewhere = run_started(
        playbook="other.yml", controller="not-" + socket.gethostname(), pid=dead_pid()
    )
    finished = run_started(playbook="done.yml", pid=dead_pid())
    ledger.append(
        [dead, alive, reused, elsewhere, finished, run_ended(finished["run_id"], "failed")]
    )

    closed = ledger.close_stale_runs()
    assert sorted(closed) == sorted([dead["run_id"], reused["run_id"]])
    assert ledger.close_stale_runs() == []
    by_id = {r["run_id"]: r for r in ledger.runs()}
    assert by_id[dead["run_id"]]["status"] == "aborted"
    assert by_id[dead["run_id"]]["reason"] == "writer process gone"
    assert by_id[alive["run_id"]]["status"] == "running"
    assert by_id[elsewhere["run_id"]]["status"] == "running"
    assert by_id[finished["run_id"]]["status"] == "failed"
    assert ledger.verify().ok


def test_runs_lists_newest_first_with_counts_and_filters(ledger):
    old = sample_run(ledger, hosts=2, tasks=2, kind="scheduled", started_at="2025-01-01T00:00:00Z")
    new = sample_run(ledger, hosts=3, tasks=1, kind="emergency")
    other = run_started(playbook="drift.yml", kind="drift")
    ledger.append([other, task_result(other["run_id"], "lonely", "AUDIT | x", "ok")])

    listed = ledger.runs()
    assert [r["run_id"] for r in listed] == [other["run_id"], new, old]
    assert listed[0]["status"] == "running"
    assert listed[0]["hosts"] == {
        "lonely": {"ok": 1, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0}
    }
    assert sorted(listed[1]["hosts"]) == ["host0", "host1", "host2"]
    assert sum(sum(c.values()) for c in listed[2]["hosts"].values()) == 4

    assert [r["run_id"] for r in ledger.runs(kind="scheduled")] == [old]
    assert [r["run_id"] for r in ledger.runs(since="2025-06-01")] == [other["run_id"], new]
    assert [r["run_id"] for r in ledger.runs(host="host2")] == [new]
    assert [r["run_id"] for r in ledger.runs(host="host0", since="2025-06-01")] == [new]
    assert [r["run_id"] for r in ledger.runs(host="lonely")] == [other["run_id"]]
    assert len(ledger.runs(limit=2)) == 2
    assert ledger.runs(host="nobody") == []
    with pytest.raises(UserError):
        ledger.runs(since="not a date")
    with pytest.raises(UserError):
        ledger.runs(kind="weekly")


def test_run_detail_and_unknown_run(ledger):
    run_id = sample_run(ledger, hosts=2, tasks=2, check_mode=True, git_commit="abc123")
    detail = ledger.run(run_id)
    assert detail["check_mode"] is True and detail["git_commit"] == "abc123"
    assert detail["status"] == "successful" and len(detail["task_results"]) == 4
    assert detail["task_results"][0]["task"] == "AUDIT | task 0"
    with pytest.raises(UserError, match="no run"):
        ledger.run("no-such-run")


def test_host_packages_from_facts_and_changes(ledger):
    start = run_started(playbook="maintain.yml")
    run_id = start["run_id"]
    ledger.append(
        [
            start,
            package_facts(
                run_id, "web1", {"openssl": "3.0.1", "ruc-account-api": "1.0.0", "telnet": "0.17"}
            ),
            package_change(run_id, "web1", "openssl", "3.0.1", "3.0.2"),
            package_change(run_id, "web1", "telnet", "0.17", None),
            package_change(run_id, "web2", "openssl", "3.0.1", "3.0.9"),
            task_result(run_id, "web1", "PATCH | upgrade", "changed"),
            run_ended(run_id, "successful"),
        ]
    )
    detail = ledger.host("web1")
    assert detail["packages"] == {"openssl": "3.0.2", "ruc-account-api": "1.0.0"}
    assert [c["package"] for c in detail["package_changes"]] == ["telnet", "openssl"]
    assert [r["run_id"] for r in detail["runs"]] == [run_id]
    assert ledger.host("web2")["packages"] == {"openssl": "3.0.9"}
    with pytest.raises(UserError, match="no records for host"):
        ledger.host("web3")
