"""The lab fleet: reachable hosts on their old RUC versions, real services, a signed repo."""

import subprocess

from conftest import INVENTORY, ROOT, ansible_env, lab_status, ssh

from milepost.lab import ruc_packages


def test_status_shows_every_host_reachable_on_its_initial_version(fresh_lab):
    rows = lab_status()
    assert len(rows) == len(fresh_lab) >= 1
    for row in rows:
        assert row["reachable"], row
        package = ruc_packages.package_for_group(row["group"])
        assert row["versions"] == {package.name: package.initial.version}


def test_status_table_counts_reachable_hosts(lab_hosts):
    proc = subprocess.run([str(ROOT / "scripts/lab"), "status"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(lab_hosts)} of {len(lab_hosts)} hosts reachable" in proc.stdout


def test_each_host_runs_its_ruc_service_and_it_is_healthy(fresh_lab):
    for host in fresh_lab:
        package = ruc_packages.package_for_group(host["group"])
        proc = ssh(host["port"], f"{package.name} health")
        assert proc.returncode == 0, (host, proc.stderr)
        assert package.initial.version in proc.stdout


def test_ansible_reaches_every_host_with_become(lab_hosts):
    proc = subprocess.run(
        [
            "ansible",
            "-i",
            str(INVENTORY),
            "ruc",
            "-b",
            "-m",
            "ansible.builtin.command",
            "-a",
            "id -un",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("root") == len(lab_hosts)


def test_ansible_refuses_a_host_whose_key_is_not_in_the_known_hosts_it_uses(lab_hosts, tmp_path):
    """ansible.cfg keeps host key checking on: with an empty known_hosts file and no
    StrictHostKeyChecking override, OpenSSH's default (ask) cannot ask, so Ansible fails.
    A fresh control path makes sure no multiplexed connection from earlier is reused."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = lab_hosts[0]["name"]
    proc = subprocess.run(
        [
            "ansible",
            "-i",
            str(INVENTORY),
            host,
            "-m",
            "ansible.builtin.ping",
            "-e",
            f"ansible_ssh_common_args='-o UserKnownHostsFile={empty}'",
            "-e",
            f"ansible_control_path_dir={tmp_path / 'cp'}",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
    )
    assert proc.returncode != 0
    assert "UNREACHABLE" in proc.stdout
    assert "Host key verification failed" in proc.stdout + proc.stderr


def test_ansible_refuses_a_host_presenting_a_different_key(lab_hosts, tmp_path):
    """A known_hosts entry with the wrong key for the port: refused, not re-learned."""
    first, second = lab_hosts[0], lab_hosts[-1]
    lines = [
        line.replace(f"[127.0.0.1]:{second['port']}", f"[127.0.0.1]:{first['port']}")
        for line in (ROOT / ".milepost/lab/ssh/known_hosts").read_text().splitlines()
        if line.startswith(f"[127.0.0.1]:{second['port']} ")
    ]
    wrong = tmp_path / "known_hosts"
    wrong.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            "ansible",
            "-i",
            str(INVENTORY),
            first["name"],
            "-m",
            "ansible.builtin.ping",
            "-e",
            f"ansible_ssh_common_args='-o UserKnownHostsFile={wrong}'",
            "-e",
            f"ansible_control_path_dir={tmp_path / 'cp'}",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
    )
    assert proc.returncode != 0
    assert "UNREACHABLE" in proc.stdout


APT_UPDATE_WITH_KEY = r"""
set -e
key=$1
d=$(mktemp -d)
mkdir -p "$d/lists/partial"
printf 'Types: deb\nURIs: http://127.0.0.1:8780/\nSuites: bookworm\n' > "$d/test.sources"
printf 'Components: main\nSigned-By: %s\n' "$key" >> "$d/test.sources"
sudo apt-get update -q -o Dir::Etc::SourceList="$d/test.sources" \
    -o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists="$d/lists" \
    -o APT::Update::Error-Mode=any 2>&1
"""


def test_repository_is_trusted_only_with_its_own_signing_key(lab_hosts):
    """apt accepts the lab repository with the lab key and rejects it with another key."""
    port = lab_hosts[0]["port"]
    lab_key = (ROOT / ".milepost/lab/repo/milepost-lab.gpg").read_bytes()
    copied = ssh(port, "cat > /tmp/milepost-lab-test.gpg", input=lab_key)
    assert copied.returncode == 0

    wrong = ssh(
        port,
        "sh -s /usr/share/keyrings/debian-archive-keyring.gpg",
        input=APT_UPDATE_WITH_KEY.encode(),
    )
    assert wrong.returncode != 0, wrong.stdout
    assert "NO_PUBKEY" in wrong.stdout or "not signed" in wrong.stdout, wrong.stdout

    right = ssh(port, "sh -s /tmp/milepost-lab-test.gpg", input=APT_UPDATE_WITH_KEY.encode())
    assert right.returncode == 0, right.stdout
