"""roles/interface_check against real servers on 127.0.0.1.

An HTTPS server with a lab-CA certificate (valid, or expiring in 3 days) and OpenSSH's
SFTP subsystem (sshd started by tests/interface_servers.py). The role runs through
ansible-playbook (ansible-runner); the test playbook writes the module's structured
results to a JSON file, and the tests assert on that, not on screen text.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import interface_servers as servers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "interface_check.yml"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("interface_check")


@pytest.fixture(scope="module")
def lab_ca(workdir: Path) -> servers.LabCA:
    return servers.make_ca(workdir / "pki")


@pytest.fixture(scope="module")
def valid_endpoint(lab_ca: servers.LabCA, workdir: Path):
    cert = servers.make_server_cert(lab_ca, workdir / "pki", "valid")
    with servers.https_server(cert) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def expiring_endpoint(lab_ca: servers.LabCA, workdir: Path):
    # 3 whole days left (plus an hour, so the count is 3 for the whole test run).
    cert = servers.make_server_cert(
        lab_ca, workdir / "pki", "expiring", valid_for=dt.timedelta(days=3, hours=1)
    )
    with servers.https_server(cert) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sftp(workdir: Path):
    with servers.sftp_server(workdir / "sftp") as server:
        yield server


def https_interface(name: str, endpoint: servers.HTTPSEndpoint, ca: servers.LabCA, **extra):
    return {
        "name": name,
        "vendor": "harbor_payments",
        "kind": "https",
        "url": endpoint.url,
        "ca_file": str(ca.cert_path),
        **extra,
    }


def sftp_interface(name: str, server: servers.SFTPServer, **extra):
    return {
        "name": name,
        "vendor": "relay_file_exchange",
        "kind": "sftp",
        "host": servers.LOOPBACK,
        "port": server.port,
        "username": server.username,
        "private_key_file": str(server.client_key.private_path),
        "known_hosts_file": str(server.known_hosts),
        "remote_dir": str(server.remote_dir),
        **extra,
    }


def run_role(
    tmp_path: Path, interfaces: list[dict], check: bool = False, **extravars: Any
) -> tuple[Any, dict | None]:
    """Run the test playbook; return (runner, {'results': [...], 'summary': {...}} or None)."""
    results_file = tmp_path / "results.json"
    (tmp_path / "runner").mkdir(exist_ok=True)
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        playbook=str(PLAYBOOK),
        extravars={"interfaces": interfaces, "results_file": str(results_file), **extravars},
        envvars={
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            # ansible-runner sets ANSIBLE_CALLBACK_PLUGINS to its own directory, which hides
            # ansible.cfg's callback_plugins; it appends its directory to a value set here.
            "ANSIBLE_CALLBACK_PLUGINS": str(ROOT / "plugins" / "callback"),
            "MILEPOST_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        },
        cmdline="--check" if check else None,
        quiet=True,
    )
    data = json.loads(results_file.read_text()) if results_file.exists() else None
    return runner, data


def by_name(data: dict) -> dict[str, dict]:
    return {result["name"]: result for result in data["results"]}


def failure_messages(runner: Any) -> list[str]:
    return [
        str(event["event_data"]["res"].get("msg", ""))
        for event in runner.events
        if event.get("event") == "runner_on_failed"
    ]


def test_https_valid_expiring_and_wrong_version(
    tmp_path: Path, lab_ca, valid_endpoint, expiring_endpoint
) -> None:
    interfaces = [
        https_interface("valid", valid_endpoint, lab_ca, expected_api_version="2.1"),
        https_interface("expiring", expiring_endpoint, lab_ca, cert_warn_days=30, cert_fail_days=1),
        https_interface("wrong-version", valid_endpoint, lab_ca, expected_api_version="3.0"),
    ]
    runner, data = run_role(tmp_path, interfaces)
    assert runner.rc == 0, runner.stdout.read()
    results = by_name(data)

    valid = results["valid"]
    assert valid["status"] == "ok", valid
    assert valid["api_version"] == "2.1"
    assert valid["http_status"] == 200
    assert valid["cert_days_left"] >= 364
    assert isinstance(valid["latency_ms"], int) and valid["latency_ms"] >= 0
    assert valid["messages"] == []

    expiring = results["expiring"]
    assert expiring["status"] == "warning", expiring
    assert expiring["cert_days_left"] == 3
    assert expiring["messages"] == ["certificate expires in 3 days (warning below 30 days)"]

    wrong = results["wrong-version"]
    assert wrong["status"] == "failed", wrong
    assert wrong["api_version"] == "2.1"
    assert wrong["messages"] == ["API version 2.1, expected 3.0"]

    assert data["summary"] == {"ok": 1, "warning": 1, "failed": 1}


def test_expiring_cert_fails_with_default_fail_days(
    tmp_path: Path, lab_ca, expiring_endpoint
) -> None:
    runner, data = run_role(tmp_path, [https_interface("expiring", expiring_endpoint, lab_ca)])
    assert runner.rc == 0
    (result,) = data["results"]
    assert result["status"] == "failed"
    assert result["messages"] == ["certificate expires in 3 days (failure below 7 days)"]


def test_untrusted_ca_fails(tmp_path: Path, valid_endpoint) -> None:
    other_ca = servers.make_ca(tmp_path / "other", name="Not the lab CA")
    interface = https_interface("untrusted", valid_endpoint, other_ca)
    runner, data = run_role(tmp_path, [interface])
    assert runner.rc == 0
    (result,) = data["results"]
    assert result["status"] == "failed"
    assert result["messages"][0].startswith("TLS certificate not trusted")


def test_sftp_right_key_writes_reads_and_deletes_canary(tmp_path: Path, sftp) -> None:
    (sftp.remote_dir / "inbound-report.csv").write_text("a,b\n")
    runner, data = run_role(tmp_path, [sftp_interface("exchange", sftp)])
    assert runner.rc == 0, runner.stdout.read()
    (result,) = data["results"]
    assert result["status"] == "ok", result
    assert result["canary"] == "verified"
    assert result["messages"] == []
    assert result["target"] == f"root@127.0.0.1:{sftp.port}:{sftp.remote_dir}"
    # The canary was deleted; the vendor's file is untouched.
    assert sorted(p.name for p in sftp.remote_dir.iterdir()) == ["inbound-report.csv"]
    (sftp.remote_dir / "inbound-report.csv").unlink()
    log = sftp.log_path.read_text()
    assert "subsystem 'sftp'" in log


def test_sftp_check_mode_skips_canary(tmp_path: Path, sftp) -> None:
    runner, data = run_role(tmp_path, [sftp_interface("exchange", sftp)], check=True)
    assert runner.rc == 0, runner.stdout.read()
    (result,) = data["results"]
    assert result["status"] == "ok", result
    assert result["canary"] == "skipped"
    assert list(sftp.remote_dir.iterdir()) == []


def test_sftp_wrong_key_fails_authentication(tmp_path: Path, sftp) -> None:
    wrong = servers.make_ssh_key(tmp_path / "keys" / "wrong_ed25519")
    interface = sftp_interface("exchange", sftp, private_key_file=str(wrong.private_path))
    runner, data = run_role(tmp_path, [interface])
    assert runner.rc == 0
    (result,) = data["results"]
    assert result["status"] == "failed"
    assert result["canary"] is None
    assert len(result["messages"]) == 1
    assert result["messages"][0].startswith("authentication failed for root@[127.0.0.1]:")


def test_sftp_unknown_host_key_is_not_trusted(tmp_path: Path, sftp) -> None:
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    runner, data = run_role(
        tmp_path, [sftp_interface("exchange", sftp, known_hosts_file=str(empty))]
    )
    assert runner.rc == 0
    (result,) = data["results"]
    assert result["status"] == "failed"
    assert result["messages"] == [
        f"host key not trusted: [127.0.0.1]:{sftp.port} is not in {empty}"
    ]
    assert empty.read_text() == ""  # never added


def test_sftp_changed_host_key_fails(tmp_path: Path, sftp) -> None:
    impostor = servers.make_ssh_key(tmp_path / "keys" / "impostor_host")
    known = tmp_path / "known_hosts_wrong"
    known.write_text(f"[127.0.0.1]:{sftp.port} {impostor.public_line}\n")
    runner, data = run_role(
        tmp_path, [sftp_interface("exchange", sftp, known_hosts_file=str(known))]
    )
    assert runner.rc == 0
    (result,) = data["results"]
    assert result["status"] == "failed"
    assert "does not match" in result["messages"][0]


def test_fail_on_failed_stops_the_play(tmp_path: Path, sftp) -> None:
    wrong = servers.make_ssh_key(tmp_path / "keys" / "wrong_ed25519")
    interface = sftp_interface("exchange", sftp, private_key_file=str(wrong.private_path))
    runner, data = run_role(tmp_path, [interface], fail_on="failed")
    assert runner.rc != 0
    assert data is None  # the play stopped before writing the results
    messages = failure_messages(runner)
    assert len(messages) == 1
    assert messages[0].startswith("1 vendor interface(s) failed: exchange: authentication failed")


def test_bad_input_fails_before_checking(tmp_path: Path) -> None:
    interface = {"name": "no-url", "vendor": "harbor_payments", "kind": "https"}
    runner, data = run_role(tmp_path, [interface])
    assert runner.rc != 0
    assert data is None
    assert failure_messages(runner) == ["interface 'no-url' (https) has no url"]
