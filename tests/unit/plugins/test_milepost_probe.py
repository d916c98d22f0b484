"""The probe of a host: plugins/modules/milepost_probe.py's pure logic and the controller's
reading of its result (milepost.patching.probe)."""

from __future__ import annotations

import pytest
from conftest import load_module

from milepost.patching.probe import check, free_space_problem

probe = load_module("milepost_probe")
STATUS = probe.parse_status(
    "ii\truc-account-api\t1.5.0\n"
    "iF\truc-payment-gateway\t2.4.0\n"
    "rc\truc-reporting\t1.0.0\n"
    "iHR\tiproute2\t6.1.0-3\n"
    "ii\tbash\t5.2.15-2+b7\n"
    "broken line\n"
)


def test_parse_status_reads_each_package_state_and_version() -> None:
    assert STATUS["ruc-account-api"] == ("ii", "1.5.0")
    assert STATUS["iproute2"] == ("iHR", "6.1.0-3")
    assert "broken line" not in STATUS


def test_half_installed_and_installed_versions() -> None:
    assert probe.half_installed(STATUS) == ["iproute2"]
    assert probe.installed_versions(STATUS) == {"ruc-account-api": "1.5.0", "bash": "5.2.15-2+b7"}


def test_pending_pins_are_those_in_scope_not_fully_at_their_pin() -> None:
    pins = {"ruc-account-api": "1.5.0", "ruc-payment-gateway": "2.4.0", "ruc-reporting": "1.0.0"}
    # Installed packages only: the half-configured one is pending, the removed one is not.
    assert probe.pending_pins(pins, None, STATUS) == ["ruc-payment-gateway"]
    assert probe.pending_pins({**pins, "ruc-account-api": "1.4.0"}, None, STATUS) == [
        "ruc-account-api",
        "ruc-payment-gateway",
    ]
    # Named packages are in scope even when not installed, and only those.
    assert probe.pending_pins(pins, ["ruc-reporting"], STATUS) == ["ruc-reporting"]
    assert probe.pending_pins(pins, [], STATUS) == []


def test_lock_holders_names_only_the_given_locks() -> None:
    text = (
        "812 apt-get /var/lib/dpkg/lock-frontend\n"
        "99 cron /run/crond.pid\n"
        "812 apt-get /var/lib/dpkg/lock-frontend\n"
    )
    assert probe.lock_holders(text, ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"]) == [
        "apt-get (pid 812, /var/lib/dpkg/lock-frontend)"
    ]


def test_package_facts_have_the_shape_of_ansible_package_facts() -> None:
    assert probe.package_facts({"bash": "5.2"}) == {
        "bash": [{"name": "bash", "version": "5.2", "source": "apt"}]
    }


def _probe(**changes):
    good = {
        "dpkg": {"audit": [], "half_installed": [], "lock_holders": []},
        "ruc_packages": {},
        "pins_pending": [],
        "os_upgrades": [],
        "services": {},
        "free_mb": {"/": 900},
        "reboot_required": False,
        "lock": None,
        "apt_cache_age": 5,
        "unreadable": {},
        "asked": {},
    }
    return {**good, **changes}


def test_a_whole_probe_can_be_decided_from() -> None:
    assert check(_probe()) is None


def test_a_cache_dpkg_left_unreadable_leaves_the_plans_to_the_roles() -> None:
    # While dpkg is interrupted python3-apt cannot open the cache; the lock step repairs
    # dpkg, and the roles, whose plans are then null, run and read the cache themselves.
    unreadable = _probe(
        unreadable={"apt_cache": "E: reinstall required"}, os_upgrades=None, pins_pending=None
    )
    assert check(unreadable) is None


@pytest.mark.parametrize(
    ("probe_result", "message"),
    [
        (None, "the probe returned no result"),
        ("text", "the probe returned no result"),
        ({}, "the probe's dpkg, ruc_packages"),
        (_probe(pins_pending="ruc-x"), "the probe's pins_pending cannot be read"),
        (_probe(dpkg={"audit": []}), "dpkg.half_installed, dpkg.lock_holders"),
        (_probe(free_mb={"/": "lots"}), "free_mb./ cannot be read"),
        (_probe(reboot_required="no"), "reboot_required"),
        (_probe(unreadable={"dpkg_lock_holders": "lslocks failed"}), "dpkg_lock_holders (lslocks"),
    ],
)
def test_a_probe_the_controller_cannot_read_is_never_nothing_to_do(probe_result, message) -> None:
    problem = check(probe_result)
    assert problem is not None and message in problem
    assert "\n" not in problem


def test_free_space_problem_names_each_short_filesystem() -> None:
    assert free_space_problem("pay-01", {"/": 900, "/var": 600}, 500) is None
    assert free_space_problem("pay-01", {"/": 900, "/var": 120}, 500) == (
        "not enough free disk space on pay-01: /var has 120 MiB free, 500 MiB needed;"
        " free some space (apt-get clean, old logs) and run again"
    )
