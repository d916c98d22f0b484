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


# ---------------------------------------------------------------- Debian's updates in the lab

OS_START = ROOT / ".milepost" / "lab" / "os-start.json"
REPO = ROOT / ".milepost" / "lab" / "repo"
SECURITY_SUITE = "bookworm-security"


def is_behind(host: dict, hosts: list[dict]) -> bool:
    """Whether the lab started ``host`` behind (milepost.lab.os_updates.is_behind)."""
    return [h["name"] for h in hosts].index(host["name"]) % 2 == 1


def os_start(host: dict, hosts: list[dict]) -> dict[str, str]:
    """{package: version} of the OS packages the lab moves ``host`` to on up and reset."""
    plan = json.loads(OS_START.read_text())
    chosen = {**plan["current"], **(plan["behind"] if is_behind(host, hosts) else {})}
    return {package: version for package, (version, _deb) in chosen.items()}


def lab_offers() -> dict[str, list[tuple[str, str]]]:
    """{package: [(version, suite)]} of every version the lab repository offers."""
    from debian.deb822 import Packages

    found: dict[str, list[tuple[str, str]]] = {}
    for index in sorted(REPO.glob("dists/*/main/binary-*/Packages")):
        suite = index.parts[-4]
        with index.open() as handle:
            for stanza in Packages.iter_paragraphs(handle, use_apt_pkg=False):
                found.setdefault(stanza["Package"], []).append((stanza["Version"], suite))
    return found


def upgrades(installed: dict[str, str], security_only: bool = False) -> dict[str, str]:
    """{package: version} APT would upgrade ``installed`` to from the lab repository: the
    newest newer version (of the security suite only, with ``security_only``)."""
    from functools import cmp_to_key

    from debian.debian_support import version_compare

    offers = lab_offers()
    found = {}
    for package, version in installed.items():
        newer = [
            offered
            for offered, suite in offers.get(package, [])
            if version_compare(offered, version) > 0
            and (suite == SECURITY_SUITE or not security_only)
        ]
        if newer:
            found[package] = max(newer, key=cmp_to_key(version_compare))
    return found


def host_versions(container: str) -> dict[str, str]:
    """{package: version} of every package installed on a lab host."""
    out = subprocess.run(
        ["docker", "exec", container, "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
