"""Runs against the lab fleet for the reliability suite: the environment of one ledger,
starting and killing runs, reading what the ledger acknowledged, the hosts' dpkg state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from lab_fleet import INVENTORY, LAB, ROOT, STATE, ansible_env, ssh

# The processes a run has going on a host (bracketed so that the pattern does not match the
# shell that runs pkill with it).
HOST_SIDE = "[A]nsiballZ|/usr/bin/[d]pkg|[a]pt-get"
MAINTAIN = ROOT / "playbooks" / "maintain.yml"
EMERGENCY = ROOT / "scripts" / "emergency-patch"
PLAYBOOKS = Path(__file__).parent / "playbooks"


def lab_hosts() -> list[dict]:
    if not INVENTORY.is_file() or not STATE.is_file():
        raise AssertionError("the lab is not up: run `make lab` (scripts/lab up) first")
    return json.loads(STATE.read_text())["hosts"]


def env_for(directory: Path, ledger_url: str | None = None) -> dict[str, str]:
    """The environment of runs that share one ledger and one state directory."""
    return {
        **ansible_env(),
        "MILEPOST_LEDGER_URL": ledger_url or f"sqlite:///{directory / 'ledger.sqlite'}",
        "MILEPOST_STATE_DIR": str(directory / "state"),
        "MILEPOST_ROOT": str(ROOT),
    }


def milepost(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["milepost", *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )


def reset_lab() -> None:
    proc = subprocess.run([str(LAB), "reset"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def start(env: dict[str, str], argv: list[str], log: Path) -> subprocess.Popen:
    """Start a run in a session of its own (so it can be killed with all its children)."""
    out = log.open("ab")
    try:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    finally:
        out.close()


def maintain_argv(limit: str, *extra: str) -> list[str]:
    return ["ansible-playbook", "-i", str(INVENTORY), str(MAINTAIN), "--limit", limit, *extra]


def emergency_argv(advisory: str, limit: str) -> list[str]:
    return [str(EMERGENCY), "--advisory", advisory, "--limit", limit, "--yes"]


MALFORMED_READS: list[str] = []  # transient "malformed" reads seen (see query)


def query(ledger: Path, sql: str, *params: object) -> list[tuple]:
    """Rows of ``sql`` on the SQLite ledger at ``ledger`` ([] before it exists).

    A reader outside the ledger's own code, polling while runs write and writers are
    killed, has seen "database disk image is malformed" now and then; the file was intact
    (integrity_check ok, the chain verified) each time. Such a read is retried and noted in
    MALFORMED_READS; the trial's own checks (ledger verify, nothing lost) still judge the
    ledger."""
    if not ledger.exists():
        return []
    for attempt in range(5):
        try:
            with sqlite3.connect(ledger, timeout=30) as db:
                return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as bad:
            if "no such table" in str(bad):  # the ledger is being created
                return []
            raise
        except sqlite3.DatabaseError as bad:
            if "malformed" not in str(bad) or attempt == 4:
                raise
            MALFORMED_READS.append(f"{ledger}: {bad}")
            time.sleep(0.2)
    return []


def committed(ledger: Path) -> dict[int, str]:
    """seq -> hash of every record committed to the SQLite ledger at ``ledger``."""
    return dict(query(ledger, "SELECT seq, hash FROM ledger_records"))


def wait_for_records(ledger: Path, count: int, proc: subprocess.Popen) -> dict[int, str]:
    """What the ledger holds once it has at least ``count`` records, or once ``proc`` ended."""
    deadline = time.monotonic() + 600
    found = committed(ledger)
    while len(found) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        found = committed(ledger)
    return found


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (ansible-runner starts ansible-playbook in a session
    of its own, out of the run's process group)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_run(proc: subprocess.Popen, hosts: list[dict]) -> None:
    """SIGKILL the run's whole process tree at once with the package managers and module
    processes it started on ``hosts``: the controller and its hosts' side of the run die
    together, as on a power loss. Returns once every one of them is gone."""
    for host in hosts:
        subprocess.Popen(
            ["docker", "exec", f"milepost-lab-{host['name']}", "pkill", "-KILL", "-f", HOST_SIDE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    tree = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(alive(pid) for pid in tree):
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for init does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def kill_host_side_when_dpkg_runs(host: dict, proc: subprocess.Popen, delay: float) -> bool:
    """Once apt has dpkg installing or configuring on ``host``, wait ``delay`` seconds and
    SIGKILL the run's processes there (True); False if the run ended first."""
    watch = subprocess.Popen(
        [
            "docker", "exec", f"milepost-lab-{host['name']}", "sh", "-c",
            "until pgrep -f '/usr/bin/[d]pkg .*--status-fd' >/dev/null; do sleep 0.01; done;"
            f" sleep {delay:.3f}; pkill -KILL -f '{HOST_SIDE}'",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while proc.poll() is None:
            if watch.poll() is not None:
                return True
            time.sleep(0.01)
        return False
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def dpkg_audit(host: dict) -> str:
    """What `dpkg --audit` reports on a lab host (empty when dpkg is consistent)."""
    proc = ssh(host["port"], "sudo -n dpkg --audit")
    assert proc.returncode == 0, f"dpkg --audit on {host['name']}: {proc.stderr.strip()}"
    return proc.stdout.strip()


def runs(env: dict[str, str], *args: str) -> list[dict]:
    """`milepost ledger runs --json` (which also closes runs whose writer is gone)."""
    proc = milepost(env, "ledger", "runs", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def verify(env: dict[str, str]) -> None:
    proc = milepost(env, "ledger", "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def lost(before: dict[int, str], after: dict[int, str]) -> list[int]:
    """Acknowledged records (seq -> hash) missing or changed afterwards."""
    return [seq for seq, digest in before.items() if after.get(seq) != digest]
