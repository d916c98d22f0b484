"""Unit tests for plugins/modules/milepost_apt_pin.py (no host, no python3-apt needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_module

MODULES = Path(__file__).resolve().parents[3] / "plugins" / "modules"


pin = load_module("milepost_apt_pin")
# The pure dpkg comparison of the sibling module stands in for apt_pkg.version_compare.
cmp = load_module("milepost_package_versions").dpkg_version_compare


def _record(installed, versions, state="installed"):
    if installed is None:
        state = "not-installed"
    return {"installed": installed, "versions": versions, "state": state}


RECORDS = {
    "ruc-account-api": _record("1.4.0", ["1.5.0", "1.4.0"]),
    "ruc-payment-gateway": _record("2.3.0", ["2.4.0", "2.3.1", "2.3.0"]),
    "ruc-reporting": _record(None, ["5.1.0", "5.0.0"]),
}


# --- validation of names and versions ---------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["ruc-account-api", "libc6", "g++", "python3.11", "0ad", "lib-x.y+z"],
)
def test_valid_package_names(name):
    valid, problems = pin.validate_request({name: "1.0"})
    assert problems == []
    assert valid == {name: "1.0"}


@pytest.mark.parametrize(
    "name",
    [
        "ruc-account-api; rm -rf /",
        "ruc-account-api && true",
        "$(reboot)",
        "`id`",
        "ruc|x",
        "ruc>x",
        "Ruc-Account-Api",
        "a",
        "-ruc",
        ".ruc",
        "ruc api",
        "ruc-account-api=1.5.0",
        "ruc-account-api:amd64",
        "ruc\nx",
        "ruc-x\n",
        "",
    ],
)
def test_invalid_package_names_are_refused(name):
    valid, problems = pin.validate_request({name: "1.0"})
    assert valid == {}
    assert len(problems) == 1
    assert "not a valid Debian package name" in problems[0]


@pytest.mark.parametrize("version", ["1.5.0", "1:2.0-1", "1.0~rc1", "2.3.1+deb12u1", "0", 2])
def test_valid_versions(version):
    valid, problems = pin.validate_request({"ruc-account-api": version})
    assert problems == []
    assert valid == {"ruc-account-api": str(version)}


@pytest.mark.parametrize(
    "version",
    [
        "",
        "latest",
        "1.5.0; rm -rf /",
        "1.5.0 ",
        "1.5.0\n",
        "$(id)",
        "v1.5",
        ">=1.0",
        None,
        True,
        [1],
        {},
    ],
)
def test_invalid_versions_are_refused(version):
    valid, problems = pin.validate_request({"ruc-account-api": version})
    assert valid == {}
    assert problems == [f"ruc-account-api: version {version!r} is not a Debian version"]


def test_every_problem_is_reported_and_valid_entries_are_kept():
    valid, problems = pin.validate_request(
        {"ruc-account-api": "1.5.0", "bad;name": "1.0", "ruc-reporting": "x"}
    )
    assert valid == {"ruc-account-api": "1.5.0"}
    assert len(problems) == 2


def test_empty_request_is_valid_and_empty():
    assert pin.validate_request({}) == ({}, [])
    assert pin.validate_request(None) == ({}, [])


# --- checks against the APT cache --------------------------------------------------------


def test_known_versions_pass():
    requested = {"ruc-account-api": "1.5.0", "ruc-payment-gateway": "2.4.0"}
    assert pin.check_against_cache(requested, RECORDS, False, cmp) == []


def test_unknown_package_and_unknown_version_fail_together():
    requested = {"ruc-account-api": "9.9.9", "ruc-no-such": "1.0"}
    problems = pin.check_against_cache(requested, RECORDS, False, cmp)
    assert problems == [
        "ruc-account-api: version 9.9.9 is not in the APT cache (known: 1.5.0, 1.4.0)",
        "ruc-no-such: no such package in the APT cache",
    ]


def test_downgrade_needs_allow_downgrade():
    requested = {"ruc-payment-gateway": "2.3.0"}
    records = {"ruc-payment-gateway": _record("2.3.1", ["2.4.0", "2.3.1", "2.3.0"])}
    problems = pin.check_against_cache(requested, records, False, cmp)
    assert problems == [
        "ruc-payment-gateway: 2.3.0 would downgrade the installed 2.3.1 (a downgrade must be"
        " named for the run: --allow-downgrade ruc-payment-gateway)"
    ]
    assert pin.check_against_cache(requested, records, True, cmp) == []
    named = pin.check_against_cache(requested, records, False, cmp, {"ruc-payment-gateway"})
    assert named == []


def test_same_version_and_new_install_are_not_downgrades():
    requested = {"ruc-account-api": "1.4.0", "ruc-reporting": "5.0.0"}
    assert pin.check_against_cache(requested, RECORDS, False, cmp) == []


# --- change computation ------------------------------------------------------------------


def test_plan_lists_only_version_changes():
    requested = {
        "ruc-account-api": "1.5.0",
        "ruc-payment-gateway": "2.3.0",
        "ruc-reporting": "5.1.0",
    }
    to_install, changes = pin.plan_changes(requested, RECORDS)
    assert to_install == ["ruc-account-api", "ruc-reporting"]
    assert changes == [
        {"package": "ruc-account-api", "from_version": "1.4.0", "to_version": "1.5.0"},
        {"package": "ruc-reporting", "from_version": None, "to_version": "5.1.0"},
    ]


def test_plan_is_empty_when_everything_is_at_its_version():
    requested = {"ruc-account-api": "1.4.0", "ruc-payment-gateway": "2.3.0"}
    assert pin.plan_changes(requested, RECORDS) == ([], [])


def test_half_configured_package_at_the_requested_version_is_installed_again():
    records = {"ruc-payment-gateway": _record("2.3.1", ["2.3.1"], state="half-configured")}
    to_install, changes = pin.plan_changes({"ruc-payment-gateway": "2.3.1"}, records)
    assert to_install == ["ruc-payment-gateway"]
    assert changes == []


def test_diff_versions_reports_what_did_happen():
    before = {"a1": "1.0", "b1": "2.0", "c1": None, "d1": "4.0"}
    after = {"a1": "1.1", "b1": "2.0", "c1": "3.0", "d1": None}
    assert pin.diff_versions(before, after, ["d1", "c1", "b1", "a1"]) == [
        {"package": "a1", "from_version": "1.0", "to_version": "1.1"},
        {"package": "c1", "from_version": None, "to_version": "3.0"},
        {"package": "d1", "from_version": "4.0", "to_version": None},
    ]


# --- the apt-get command -----------------------------------------------------------------


def test_command_pins_versions_keeps_configs_and_allows_downgrades_only_when_asked():
    requested = {"ruc-account-api": "1.5.0", "ruc-payment-gateway": "2.3.0"}
    argv = pin.build_command(requested, ["ruc-account-api", "ruc-payment-gateway"], False, 60)
    assert argv[:2] == ["apt-get", "install"]
    assert "Dpkg::Options::=--force-confold" in argv
    assert "DPkg::Lock::Timeout=60" in argv
    assert "--allow-downgrades" not in argv
    assert argv[-3:] == ["--", "ruc-account-api=1.5.0", "ruc-payment-gateway=2.3.0"]
    argv = pin.build_command(requested, ["ruc-payment-gateway"], True, 5)
    assert "--allow-downgrades" in argv
    assert argv[-1] == "ruc-payment-gateway=2.3.0"


# --- dpkg failures -----------------------------------------------------------------------

DPKG_OUTPUT = """\
Setting up ruc-payment-gateway (2.3.1) ...
ruc-payment-gateway 2.3.1: postinst: schema migration 0042 failed (column fee_cents already exists)
dpkg: error processing package ruc-payment-gateway (--configure):
 installed ruc-payment-gateway package post-installation script subprocess returned error
 exit status 1
Errors were encountered while processing:
 ruc-payment-gateway
E: Sub-process /usr/bin/dpkg returned an error code (1)
"""


def test_failed_package_names_are_read_from_dpkg_output():
    assert pin.failed_package_names(DPKG_OUTPUT) == ["ruc-payment-gateway"]
    assert pin.failed_package_names("all fine") == []


def test_tail_lines_keeps_the_last_non_empty_lines():
    assert pin.tail_lines("a\n\nb\nc\n", 2) == ["b", "c"]
    assert pin.tail_lines("a\nb", 0) == []


def test_describe_failures_names_package_versions_state_and_reason():
    requested = {"ruc-account-api": "1.5.0", "ruc-payment-gateway": "2.3.1"}
    before = {"ruc-account-api": "1.4.0", "ruc-payment-gateway": "2.3.0"}
    after = {
        "ruc-account-api": _record("1.5.0", ["1.5.0", "1.4.0"]),
        "ruc-payment-gateway": _record("2.3.1", ["2.3.1"], state="half-configured"),
    }
    failed, message = pin.describe_failures(
        requested, before, after, ["ruc-payment-gateway"], pin.tail_lines(DPKG_OUTPUT, 20)
    )
    assert failed == [
        {
            "package": "ruc-payment-gateway",
            "from_version": "2.3.0",
            "to_version": "2.3.1",
            "installed_version": "2.3.1",
            "state": "half-configured",
        }
    ]
    assert "\n" not in message
    assert message.startswith("apt-get failed for ruc-payment-gateway 2.3.0 -> 2.3.1")
    assert "half-configured" in message
    assert "schema migration 0042 failed" in message


def test_describe_failures_finds_unconfigured_packages_dpkg_did_not_name():
    requested = {"ruc-reporting": "5.1.0"}
    after = {"ruc-reporting": _record(None, ["5.1.0"])}
    failed, message = pin.describe_failures(requested, {}, after, [], ["E: something broke"])
    assert failed[0]["state"] == "not-installed"
    assert "ruc-reporting not installed -> 5.1.0" in message
    assert message.endswith("E: something broke")


def test_module_documents_the_ledger_key():
    assert "milepost_package_changes:" in pin.RETURN
    assert "supports_check_mode=True" in (MODULES / "milepost_apt_pin.py").read_text()


# ---------------------------------------------------------------- never less secure

FLOOR = {"ruc-payment-gateway": [{"advisory": "ADV-PAY-1", "fixed": "2.4.0", "exception": None}]}


def _sec(installed, wanted, floor=FLOOR):
    pin = load_module("milepost_apt_pin")
    from debian.debian_support import version_compare

    records = {
        "ruc-payment-gateway": {"installed": installed, "versions": [], "state": "installed"}
    }
    return pin.check_security({"ruc-payment-gateway": wanted}, records, floor, version_compare)


def test_a_version_an_advisory_says_is_vulnerable_is_refused_naming_the_advisory():
    problems, overrides = _sec("2.4.0", "2.3.0")
    assert problems == [
        "ruc-payment-gateway: 2.3.0 is vulnerable to advisory ADV-PAY-1 (fixed in 2.4.0;"
        " installed 2.4.0)"
    ]
    assert overrides == []
    # a new install of a vulnerable version is refused too
    assert _sec(None, "2.3.0")[0]


def test_a_host_already_exposed_may_move_up_but_not_down():
    assert _sec("2.2.0", "2.3.0") == ([], [])  # no less secure than found
    assert _sec("2.3.0", "2.2.0")[0]  # lower still: refused
    assert _sec("2.3.0", "2.4.0") == ([], [])  # to the fix


def test_an_unexpired_exception_lets_the_version_through_as_a_recorded_override():
    floor = {
        "ruc-payment-gateway": [{"advisory": "ADV-PAY-1", "fixed": "2.4.0", "exception": "E-1"}]
    }
    problems, overrides = _sec("2.4.0", "2.3.0", floor)
    assert problems == []
    assert overrides == [
        {
            "override": "exception",
            "package": "ruc-payment-gateway",
            "to_version": "2.3.0",
            "advisory": "ADV-PAY-1",
            "exception": "E-1",
        }
    ]


def test_named_downgrades_become_overrides():
    pin = load_module("milepost_apt_pin")
    from debian.debian_support import version_compare

    planned = [
        {"package": "a", "from_version": "2.0", "to_version": "1.0"},
        {"package": "b", "from_version": "1.0", "to_version": "2.0"},
    ]
    assert pin.downgrade_overrides(planned, {"a", "b"}, version_compare) == [
        {"package": "a", "from_version": "2.0", "to_version": "1.0", "override": "downgrade"}
    ]
