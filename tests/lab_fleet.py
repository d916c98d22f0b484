"""The lab fleet as tests reach it: paths, its status, SSH to a lab host, the environment
Ansible runs in (used by tests/integration and tests/reliability)."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "scripts" / "lab"
INVENTORY = ROOT / "inventory" / "lab" / "hosts.yml"
STATE = ROOT / ".milepost" / "lab" / "state.json"
KEY = ROOT / ".milepost" / "lab" / "ssh" / "id_ed25519"
KNOWN_HOSTS = ROOT / ".milepost" / "lab" / "ssh" / "known_hosts"


def lab_status() -> list[dict]:
    proc = subprocess.run([str(LAB), "status", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ssh(port: int, command: str, *, input: bytes | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [
            "ssh",
            "-i",
            str(KEY),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={KNOWN_HOSTS}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-p",
            str(port),
            "ops@127.0.0.1",
            command,
        ],
        input=input,
        capture_output=True,
        timeout=60,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
