"""plugins/module_utils/milepost_health.py: the health gate inside the module run that made
the change: restarts, health checks, the rollback and the one-line verdict."""

from __future__ import annotations

import json

import pytest

# tests/unit/conftest.py puts plugins/module_utils under ansible.module_utils.
from ansible.module_utils import milepost_health as health


class _Host:
    """A host whose commands answer from a script: versions installed, services' health."""

    def __init__(self, versions, unhealthy=(), rollback_rc=0, heals=True):
        self.versions = dict(versions)
        self.unhealthy = set(unhealthy)
        self.rollback_rc = rollback_rc
        self.heals = heals
        self.ran = []
        self.broken = {}

    def run_command(self, argv, **_kwargs):
        self.ran.append(list(argv))
        if argv[0] == "service":
            return 0, "", ""
        if argv[1:2] == ["health"]:
            name = argv[0].rsplit("/", 1)[-1]
            return (
                (1, "", f"{name}: port 8443 refused\n") if name in self.unhealthy else (0, "", "")
            )
        if argv[:2] == ["apt-get", "install"]:
            if self.rollback_rc == 0:
                for spec in argv[argv.index("--") + 1 :]:
                    name, version = spec.split("=")
                    self.versions[name] = version
                    self.broken.pop(name, None)
                if self.heals:
                    self.unhealthy.clear()
            return self.rollback_rc, "", "E: broken" if self.rollback_rc else ""
        if argv[:2] == ["apt-get", "remove"]:
            for name in argv[argv.index("--") + 1 :]:
                self.versions.pop(name, None)
            return 0, "", ""
        raise AssertionError(argv)

    def installed(self, names):
        return {name: self.versions.get(name) for name in names}


PAY = "ruc-payment-gateway"
CHANGE = [{"package": "ruc-payment-gateway", "from_version": "2.3.0", "to_version": "2.3.1"}]
PREVIOUS = {"ruc-payment-gateway": "2.3.0", "ruc-account-api": "1.5.0"}


def _gate(host, failure="", changes=CHANGE):
    return health.gate(
        host, changes, PREVIOUS, ["ruc-payment-gateway"], "/usr/bin", 5, failure,
        host.installed, 60,
    )  # fmt: skip


def test_a_healthy_change_passes_and_nothing_is_rolled_back():
    host = _Host({"ruc-payment-gateway": "2.3.1"})
    report, rolled = _gate(host)
    assert (report["result"], rolled) == ("passed", [])
    assert host.ran == [["/usr/bin/ruc-payment-gateway", "health", "--wait", "5"]]


def test_an_unhealthy_service_rolls_the_changed_package_back_and_says_so_in_one_line():
    host = _Host({"ruc-payment-gateway": "2.3.1"}, unhealthy={"ruc-payment-gateway"})
    report, rolled = _gate(host)
    assert report["result"] == "rolled_back"
    assert rolled == [
        {"package": "ruc-payment-gateway", "from_version": "2.3.1", "to_version": "2.3.0"}
    ]
    # Only the changed package goes back; ruc-account-api was not touched.
    install = next(argv for argv in host.ran if argv[:2] == ["apt-get", "install"])
    assert install[-1] == "ruc-payment-gateway=2.3.0" and "--allow-downgrades" in install
    assert health.message(report) == (
        "Health gate: rolled_back after ruc-payment-gateway unhealthy"
        " (ruc-payment-gateway: port 8443 refused);"
        " rolled back ruc-payment-gateway 2.3.1 -> 2.3.0;"
        " now ruc-payment-gateway=2.3.0, healthy"
    )


def test_a_failed_change_is_rolled_back_without_asking_for_health_first():
    host = _Host({"ruc-payment-gateway": "2.3.1"})
    report, _ = _gate(host, failure="dpkg: error processing package ruc-payment-gateway")
    assert report["result"] == "rolled_back"
    assert report["reasons"] == ["dpkg: error processing package ruc-payment-gateway"]
    assert "after a failed change" in health.message(report)


def test_a_rollback_that_does_not_restore_the_host_is_rollback_failed():
    host = _Host(
        {"ruc-payment-gateway": "2.3.1"}, unhealthy={"ruc-payment-gateway"}, rollback_rc=100
    )
    report, rolled = _gate(host)
    assert report["result"] == "rollback_failed" and rolled == []
    line = health.message(report)
    assert "NOT restored" in line and "apt-get install failed (exit 100): E: broken" in line
    assert "\n" not in line


def test_a_package_that_was_not_installed_before_is_removed():
    host = _Host({"ruc-reporting": "5.1.0"}, unhealthy={"ruc-reporting"})
    changes = [{"package": "ruc-reporting", "from_version": None, "to_version": "5.1.0"}]
    report, rolled = health.gate(
        host, changes, {"ruc-reporting": None}, ["ruc-reporting"], "/usr/bin", 5, "",
        host.installed, 60,
    )  # fmt: skip
    assert ["apt-get", "remove", "--yes", "--quiet", "--", "ruc-reporting"] in host.ran
    assert rolled == [{"package": "ruc-reporting", "from_version": "5.1.0", "to_version": None}]
    # A removed package has no service to ask again.
    assert report["result"] == "rolled_back" and report["still_unhealthy"] == []


@pytest.mark.parametrize(
    ("previous", "now", "error", "still", "expected"),
    [
        ({"a": "1"}, {"a": "1"}, "", [], "rolled_back"),
        ({"a": "1"}, {"a": "2"}, "", [], "rollback_failed"),
        ({"a": "1"}, {"a": "1"}, "E: x", [], "rollback_failed"),
        ({"a": "1"}, {"a": "1"}, "", ["a"], "rollback_failed"),
        ({"a": None}, {"a": None}, "", [], "rolled_back"),
    ],
)
def test_verdict(previous, now, error, still, expected):
    assert health.verdict(previous, now, error, still) == expected


def test_check_mode_judges_without_rolling_back():
    host = _Host({"ruc-payment-gateway": "2.3.0"}, unhealthy={"ruc-payment-gateway"})
    report, rolled = health.gate(
        host, CHANGE, PREVIOUS, ["ruc-payment-gateway"], "/usr/bin", 5, "", host.installed, 60,
        check_mode=True,
    )  # fmt: skip
    assert not any(argv[0] == "apt-get" for argv in host.ran) and rolled == []
    assert report["result"] == "rollback_failed" and report["still_unhealthy"] == [
        "ruc-payment-gateway"
    ]
    assert health.message(report, check_mode=True).startswith(
        "Health gate (check mode, nothing changed): rollback_failed"
    )


# --- the milepost_health_gate module (the health_gate role's one module run) --------------


def _run_gate_module(monkeypatch, capsys, host, args, check_mode=False):
    """Run plugins/modules/milepost_health_gate.py on ``host``: (failed, its JSON result)."""
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args
    from conftest import load_module

    gate_module = load_module("milepost_health_gate")

    def run_command(_module, argv, **_kwargs):
        if argv[0] == "dpkg-query":
            names = argv[argv.index("--") + 1 :]
            lines = [f"{n}\t{v}\tinstalled" for n, v in host.versions.items() if n in names]
            lines += [f"{n}\t{v}\thalf-configured" for n, v in host.broken.items() if n in names]
            lines += [f"{n}\t\tnot-installed" for n in names if n not in host.versions]
            return 0, "\n".join(lines) + "\n", ""
        return host.run_command(argv)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    with patch_module_args({**args, "_ansible_check_mode": check_mode}):
        with pytest.raises(SystemExit) as done:
            gate_module.main()
    result = json.loads(capsys.readouterr().out)
    return done.value.code != 0, result


def test_the_module_passes_a_healthy_host_and_says_it_is_verified(monkeypatch, capsys):
    host = _Host({"ruc-payment-gateway": "2.3.1"})
    args = {"previous_versions": {"ruc-payment-gateway": "2.3.0"}, "packages": [PAY]}
    failed, result = _run_gate_module(monkeypatch, capsys, host, args)
    assert not failed and result["changed"] is False
    assert result["ansible_facts"]["health_gate_result"] == "passed"
    assert result["ansible_facts"]["milepost_progress"] == "verified"
    assert not any(argv[0] == "apt-get" for argv in host.ran)


def test_the_module_restores_every_previous_version_and_fails_the_host(monkeypatch, capsys):
    host = _Host(
        {"ruc-payment-gateway": "2.3.1", "ruc-account-api": "1.5.1"},
        unhealthy={"ruc-payment-gateway"},
    )
    failed, result = _run_gate_module(
        monkeypatch, capsys, host,
        {"previous_versions": PREVIOUS, "packages": ["ruc-payment-gateway"], "wait_seconds": 5},
    )  # fmt: skip
    assert failed and result["changed"] is True
    assert result["milepost_health_gate"]["result"] == "rolled_back"
    assert host.versions == PREVIOUS  # both packages of previous_versions went back
    assert result["msg"] == (
        "Health gate: rolled_back after ruc-payment-gateway unhealthy"
        " (ruc-payment-gateway: port 8443 refused);"
        " rolled back ruc-account-api 1.5.1 -> 1.5.0, ruc-payment-gateway 2.3.1 -> 2.3.0;"
        " now ruc-account-api=1.5.0, ruc-payment-gateway=2.3.0, healthy"
    )
    assert {c["package"] for c in result["milepost_package_changes"]} == set(PREVIOUS)
    assert "milepost_progress" not in result.get("ansible_facts", {})


def test_a_half_configured_package_is_rolled_back_from_its_version(monkeypatch, capsys):
    host = _Host({"ruc-account-api": "1.5.0"})
    host.broken = {PAY: "2.3.1"}  # its postinst failed: dpkg says half-configured
    failed, result = _run_gate_module(
        monkeypatch, capsys, host,
        {"previous_versions": PREVIOUS, "packages": [PAY], "failure": "postinst failed"},
    )  # fmt: skip
    assert failed and result["milepost_health_gate"]["result"] == "rolled_back"
    assert result["milepost_package_changes"] == [
        {"package": PAY, "from_version": "2.3.1", "to_version": "2.3.0"}
    ]
    assert "rolled back ruc-payment-gateway 2.3.1 -> 2.3.0" in result["msg"]
