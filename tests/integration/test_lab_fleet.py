"""The lab fleet: reachable hosts on their old RUC versions, real services, a signed repo."""

import subprocess
from pathlib import Path

from conftest import INVENTORY, KNOWN_HOSTS, ROOT, ansible_env, lab_status, ssh

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


def ping_with_known_hosts(host: str, known_hosts: Path, control_dir: Path):
    """`ansible HOST -m ping` with the inventory's ssh options except its known_hosts
    file: ``known_hosts`` instead, and no StrictHostKeyChecking override (ansible.cfg keeps
    host key checking on, so OpenSSH's default, ask, applies and cannot ask). A control
    path of its own makes sure no multiplexed connection from earlier is reused."""
    return subprocess.run(
        [
            "ansible",
            "-i",
            str(INVENTORY),
            host,
            "-m",
            "ansible.builtin.ping",
            "-e",
            f"ansible_ssh_common_args='-o UserKnownHostsFile={known_hosts}'",
            "-e",
            f"ansible_control_path_dir={control_dir}",
        ],
        capture_output=True,
        text=True,
        env=ansible_env(),
    )


def known_hosts_lines(port: int) -> list[str]:
    """The lab's known_hosts lines of the host on ``port``."""
    return [
        line
        for line in KNOWN_HOSTS.read_text().splitlines()
        if line.startswith(f"[127.0.0.1]:{port} ")
    ]


# Ansible's exit code when a host was unreachable (and none failed otherwise).
UNREACHABLE_EXIT = 4


def test_ansible_refuses_a_host_whose_key_is_not_in_the_known_hosts_it_uses(lab_hosts, tmp_path):
    """An empty known_hosts file: the connection is refused for the unknown host key (and
    the key is not learned), not for anything else."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    host = lab_hosts[0]["name"]
    proc = ping_with_known_hosts(host, empty, tmp_path / "cp")
    output = proc.stdout + proc.stderr
    assert proc.returncode == UNREACHABLE_EXIT, output
    assert f"{host} | UNREACHABLE!" in proc.stdout, output
    assert "Host key verification failed." in output, output
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" not in output, output
    assert empty.read_text() == ""


def test_ansible_refuses_a_host_presenting_a_different_key(lab_hosts, tmp_path):
    """A known_hosts entry with another lab host's keys for the port: refused because the
    key changed (OpenSSH's man-in-the-middle warning), not re-learned, and for that reason
    only: the same run with the host's own keys reaches it."""
    first, second = lab_hosts[0], lab_hosts[-1]
    own = known_hosts_lines(first["port"])
    theirs = known_hosts_lines(second["port"])
    assert own and theirs, "the lab's known_hosts has no lines for these hosts"
    keys = {line.split(" ", 1)[1] for line in own}
    other_keys = {line.split(" ", 1)[1] for line in theirs}
    assert first["port"] != second["port"], "the lab needs two hosts"
    assert not keys & other_keys, "the two lab hosts share a host key"

    right = tmp_path / "known_hosts_right"
    right.write_text("\n".join(own) + "\n")
    reached = ping_with_known_hosts(first["name"], right, tmp_path / "cr")
    assert reached.returncode == 0, reached.stdout + reached.stderr
    assert f"{first['name']} | SUCCESS" in reached.stdout, reached.stdout

    wrong = tmp_path / "known_hosts"
    text = "".join(
        line.replace(f"[127.0.0.1]:{second['port']} ", f"[127.0.0.1]:{first['port']} ") + "\n"
        for line in theirs
    )
    wrong.write_text(text)
    proc = ping_with_known_hosts(first["name"], wrong, tmp_path / "cp")
    output = proc.stdout + proc.stderr
    assert proc.returncode == UNREACHABLE_EXIT, output
    assert f"{first['name']} | UNREACHABLE!" in proc.stdout, output
    assert "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!" in output, output
    assert (
        f"Host key for [127.0.0.1]:{first['port']} has changed and you have requested"
        " strict checking." in output
    ), output
    assert "Host key verification failed." in output, output
    assert wrong.read_text() == text  # not re-learned


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
