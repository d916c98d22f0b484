"""plugins/module_utils/milepost_health.py: the health gate inside the module run that made
the change: restarts, health checks, the rollback and the one-line verdict."""

from __future__ import annotations

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
