"""Runs last: `down` leaves nothing of the lab behind and `up` after `down` works.
It ends with the fleet brought back to the size it had."""

import json
import socket
import subprocess

from conftest import INVENTORY, LAB, STATE, lab_status


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(LAB), *args], capture_output=True, text=True, timeout=1800)


def lab_containers() -> list[str]:
    proc = subprocess.run(
        ["docker", "ps", "-a", "--filter", "label=milepost.lab", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.split()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_down_removes_everything_and_up_after_down_works(lab_hosts):
    ports = [h["port"] for h in lab_hosts] + [8780, *range(8443, 8448)]  # repository, vendor APIs
    size = len(lab_hosts)

    proc = lab("down")
    assert proc.returncode == 0, proc.stderr
    assert lab_containers() == []
    assert not any(listening(p) for p in ports)
    sshd = subprocess.run(["pgrep", "-af", "sshd -D -e -p"], capture_output=True, text=True)
    assert sshd.stdout == ""
    assert not INVENTORY.exists() and not STATE.exists()
    assert lab("status", "--json").stdout.strip() == "[]"

    proc = lab("up", "--hosts", "2")
    assert proc.returncode == 0, proc.stderr
    rows = lab_status()
    assert [r["reachable"] for r in rows] == [True, True]
    # Two hosts, the repository server and the vendors' APIs.
    assert len(lab_containers()) == 4

    proc = lab("up", "--hosts", str(size))
    assert proc.returncode == 0, proc.stderr
    rows = lab_status()
    assert len(rows) == size and all(r["reachable"] for r in rows)
    assert len(json.loads(STATE.read_text())["hosts"]) == size
