"""Drift detection and remediation on lab hosts (playbooks/drift.yml, remediate.yml, through
`milepost drift ...` and `milepost change ...`).

The tests run in order on two hosts and share one ledger: pay-01 takes the five kinds of
unauthorised drift, acct-01 a planned change. They converge both hosts first, so they do
not depend on what earlier tests left behind.
"""

import json
import subprocess

import pytest
from conftest import ssh
from test_maintain import env_for, ledger_json, records

PAY, ACCT = "pay-01", "acct-01"
HOSTS = f"{PAY}:{ACCT}"

# A vendor engineer's hand edits on pay-01, one of each kind, and the resource each is.
UNAUTHORISED = {
    "file:/etc/ruc/ruc-payment-gateway.conf": (
        "sed -i 's/^# log_level = INFO/log_level = DEBUG/' /etc/ruc/ruc-payment-gateway.conf"
    ),
    "service:ruc-payment-gateway": "/etc/init.d/ruc-payment-gateway stop",
    "package:vendor-diag-tool": (
        "mkdir -p /tmp/vdt/DEBIAN /tmp/vdt/usr/bin"
        " && printf 'Package: vendor-diag-tool\\nVersion: 1.0\\nArchitecture: all\\n"
        "Maintainer: Vendor <support@vendor.example>\\nDescription: diagnostics\\n'"
        " > /tmp/vdt/DEBIAN/control"
        " && printf '#!/bin/sh\\necho diag\\n' > /tmp/vdt/usr/bin/vendor-diag"
        " && chmod 0755 /tmp/vdt/usr/bin/vendor-diag"
        " && dpkg-deb --build /tmp/vdt /tmp/vdt.deb >/dev/null && dpkg -i /tmp/vdt.deb >/dev/null"
    ),
    "sudoers:/etc/sudoers.d/vendor-support": (
        "echo 'ops ALL=(root) NOPASSWD: /usr/bin/tail' > /etc/sudoers.d/vendor-support"
        " && chmod 0440 /etc/sudoers.d/vendor-support"
    ),
    "sshd:PermitRootLogin": (
        "sed -i 's/^PermitRootLogin no/PermitRootLogin yes/'"
        " /etc/ssh/sshd_config.d/milepost-lab.conf"
    ),
}
PLANNED = "file:/etc/ruc/ruc-account-api.conf"


def port(lab_hosts, name: str) -> int:
    return next(h["port"] for h in lab_hosts if h["name"] == name)


def as_root(lab_hosts, host: str, command: str) -> None:
    proc = ssh(port(lab_hosts, host), f"sudo sh -c {json.dumps(command)}")
    assert proc.returncode == 0, proc.stderr


def milepost(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["milepost", *args], capture_output=True, text=True, env=env)


def report(env) -> dict:
    proc = milepost(env, "drift", "report", "--all", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def open_by_host(env) -> dict[str, dict[str, dict]]:
    found: dict[str, dict[str, dict]] = {}
    for finding in report(env)["open"]:
        found.setdefault(finding["host"], {})[finding["resource"]] = finding
    return found


def changed_tasks(env, run_id: str) -> list[str]:
    run = ledger_json(env, "show", run_id)
    return [f"{r['host']}: {r['task']}" for r in run["task_results"] if r["status"] == "changed"]


def last_run_id(proc: subprocess.CompletedProcess) -> str:
    words = [w for w in proc.stdout.split() if w.startswith("2") and "Z-" in w]
    assert words, proc.stdout[-2000:]
    return words[-1].rstrip(":")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return env_for(tmp_path_factory.mktemp("drift"))


def test_a_second_remediation_changes_nothing_and_a_converged_host_shows_no_drift(lab_hosts, env):
    first = milepost(env, "drift", "remediate", "--full", "--limit", HOSTS)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert {(r["host"], r["body"]["mode"]) for r in records(env, "drift_check")} >= {
        (PAY, "check"),
        (ACCT, "check"),
    }
    # A lab host is created converged to its host-level baseline (the image, and
    # milepost.lab.provision for the sysctl file): whatever the first remediation corrects
    # is on the RUC side (the releases and files the tests before this one left).
    corrected = {
        entry["resource"]
        for r in records(env, "drift_check")
        if r["body"]["mode"] == "converge"
        for entry in r["body"]["drifted"]
    }
    host_level = ("sysctl:", "user:", "sudoers:", "sshd:")
    assert not [res for res in corrected if res.startswith(host_level)], corrected
    # Both hosts converged; the second remediation (one host: the same tasks) and the check
    # after it (check-mode fidelity) change nothing.
    second = milepost(env, "drift", "remediate", "--full", "--limit", PAY)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert changed_tasks(env, last_run_id(second)) == []
    assert open_by_host(env) == {}
    checks = [r for r in records(env, "drift_check") if r["run_id"] == last_run_id(second)]
    assert {(r["host"], r["body"]["mode"]) for r in checks} == {(PAY, "converge"), (PAY, "check")}
    assert all(r["body"]["drifted"] == [] for r in checks)


def test_each_kind_of_drift_is_found_with_its_host_and_resource(lab_hosts, env):
    opened = milepost(
        env,
        "change",
        "open",
        "--hosts",
        ACCT,
        "--resources",
        "file:/etc/ruc/*",
        "--reason",
        "CHG-1042 raise the account API log level for a vendor investigation",
    )
    assert opened.returncode == 0, opened.stderr
    for command in UNAUTHORISED.values():
        as_root(lab_hosts, PAY, command)
    as_root(
        lab_hosts,
        ACCT,
        "sed -i 's/^# log_level = INFO/log_level = DEBUG/' /etc/ruc/ruc-account-api.conf",
    )

    check = milepost(env, "drift", "check", "--limit", HOSTS)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr

    found = open_by_host(env)
    assert set(found) == {PAY, ACCT}
    assert set(found[PAY]) == set(UNAUTHORISED)
    assert {f["cls"] for f in found[PAY].values()} == {"unauthorised"}
    assert set(found[ACCT]) == {PLANNED}
    assert found[ACCT][PLANNED]["cls"] == "planned"
    # Expected and actual, with the diff of what the vendor changed.
    conf = found[PAY]["file:/etc/ruc/ruc-payment-gateway.conf"]
    assert "-log_level = DEBUG" in conf["diff"] and "+# log_level = INFO" in conf["diff"]
    assert found[PAY]["service:ruc-payment-gateway"]["actual"] == "stopped"
    assert found[PAY]["package:vendor-diag-tool"]["actual"] == "installed 1.0"
    sudo = found[PAY]["sudoers:/etc/sudoers.d/vendor-support"]
    assert "NOPASSWD: /usr/bin/tail" in sudo["diff"]
    assert found[PAY]["sshd:PermitRootLogin"]["actual"] == "PermitRootLogin yes"
    # Nothing was corrected by the check.
    assert ssh(port(lab_hosts, PAY), "test -e /etc/sudoers.d/vendor-support").returncode == 0


def test_remediation_corrects_unauthorised_drift_and_closes_it_with_its_run(lab_hosts, env):
    before = open_by_host(env)
    fixed = milepost(env, "drift", "remediate")
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr
    run_id = last_run_id(fixed)

    after = open_by_host(env)
    assert PAY not in after  # every unauthorised finding closed
    assert set(after[ACCT]) == {PLANNED}  # the planned change is left alone
    resolved = {f["id"]: f for f in report(env)["resolved"]}
    for finding in before[PAY].values():
        closed = resolved[finding["id"]]
        assert closed["resolution"] == "remediated"
        assert closed["resolved_by_run"] == run_id

    pay = port(lab_hosts, PAY)
    assert ssh(pay, "test -e /etc/sudoers.d/vendor-support").returncode != 0
    assert ssh(pay, "dpkg -s vendor-diag-tool").returncode != 0
    assert ssh(pay, "sudo /etc/init.d/ruc-payment-gateway status").returncode == 0
    assert "log_level = DEBUG" not in ssh(pay, "cat /etc/ruc/ruc-payment-gateway.conf").stdout
    assert "permitrootlogin no" in ssh(pay, "sudo sshd -T").stdout


def test_drift_that_comes_back_after_correction_is_recurring(lab_hosts, env):
    as_root(lab_hosts, PAY, UNAUTHORISED["sudoers:/etc/sudoers.d/vendor-support"])
    check = milepost(env, "drift", "check", "--limit", PAY)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr
    found = open_by_host(env)[PAY]
    assert set(found) == {"sudoers:/etc/sudoers.d/vendor-support"}
    assert found["sudoers:/etc/sudoers.d/vendor-support"]["recurring"] is True

    shown = milepost(env, "drift", "report")
    assert shown.returncode == 0, shown.stderr
    for word in ("unauthorised", "planned", "recurring", PAY, ACCT):
        assert word in shown.stdout
    totals = report(env)["totals"]
    assert totals["open"] == 2 and totals["planned"] == 1 and totals["unauthorised"] == 1
    assert totals["recurring"] == 1


def test_a_remediation_that_cannot_correct_the_drift_opens_a_glitch(lab_hosts, env):
    # A setting before the Include line of sshd_config wins over every drop-in: the
    # baseline's drop-in cannot correct it, so the check after the correction still
    # finds it.
    as_root(lab_hosts, PAY, "sed -i '1i PasswordAuthentication yes' /etc/ssh/sshd_config")
    try:
        check = milepost(env, "drift", "check", "--limit", PAY)
        assert check.returncode == 0, check.stdout[-3000:] + check.stderr
        failed = milepost(env, "drift", "remediate", "--limit", PAY)
        assert failed.returncode == 1, failed.stdout[-3000:]
        assert "glitch G-" in failed.stderr
        (glitch,) = records(env, "glitch")
        assert glitch["body"]["hosts"] == [PAY]
        assert glitch["body"]["resources"] == ["sshd:PasswordAuthentication"]
        assert glitch["body"]["detected_by"] == "remediation"
        still = open_by_host(env)[PAY]
        assert set(still) == {"sshd:PasswordAuthentication"}
    finally:
        as_root(lab_hosts, PAY, "sed -i '1{/^PasswordAuthentication yes$/d}' /etc/ssh/sshd_config")
        as_root(
            lab_hosts,
            ACCT,
            "sed -i 's/^log_level = DEBUG/# log_level = INFO/' /etc/ruc/ruc-account-api.conf",
        )
