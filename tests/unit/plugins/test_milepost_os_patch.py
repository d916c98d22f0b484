"""Unit tests for plugins/modules/milepost_os_patch.py: planning on APT and dnf data, the
dnf and rpm output parsers, the commands, and finding what runs replaced code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_module

MODULES = Path(__file__).resolve().parents[3] / "plugins" / "modules"


osp = load_module("milepost_os_patch")
cmp = load_module("milepost_package_versions").dpkg_version_compare


def _apt(installed, candidate, *versions, held=False):
    return {
        "installed": installed,
        "candidate": candidate,
        "held": held,
        "versions": [{"version": v, "security": s} for v, s in versions],
    }


RECORDS = {
    "libssl3": _apt(
        "3.0.20-1~deb12u2",
        "3.0.20-1~deb12u2+milepost1",
        ("3.0.20-1~deb12u2+milepost1", True),
    ),
    "iproute2": _apt("6.1.0-3", "6.1.0-3+milepost1", ("6.1.0-3+milepost1", False)),
    "ruc-account-api": _apt("1.4.0", "1.5.0", ("1.5.0", False)),
    "tzdata": _apt("2024a-0+deb12u1", "2024a-0+deb12u1"),
    "curl": _apt("7.88.1-10", "7.88.1-11", ("7.88.1-11", False), held=True),
    # A security version and a newer regular one: security-only takes the security one.
    "openssh-server": _apt(
        "1:9.2p1-2",
        "1:9.2p1-2+deb12u4",
        ("1:9.2p1-2+deb12u3", True),
        ("1:9.2p1-2+deb12u4", False),
    ),
}


@pytest.mark.parametrize(
    "origin, security",
    [
        ({"archive": "bookworm-security", "codename": "bookworm-security", "label": "x"}, True),
        ({"archive": "stable-security", "codename": "", "label": ""}, True),
        ({"archive": "bookworm", "codename": "bookworm", "label": "Debian-Security"}, True),
        ({"archive": "bookworm", "codename": "bookworm", "label": "Debian"}, False),
        ({"archive": "bookworm-updates", "codename": "bookworm-updates", "label": "Debian"}, False),
        ({"archive": "security-tools", "codename": None, "label": None}, False),
    ],
)
def test_security_origins_are_security_archives_or_labels(origin, security):
    assert osp.is_security_origin(origin) is security


def test_all_takes_every_candidate_except_excluded_and_held_packages():
    plan = osp.select_upgrades(RECORDS, "all", ["ruc-*"], cmp)
    assert [(p["package"], p["to_version"]) for p in plan] == [
        ("iproute2", "6.1.0-3+milepost1"),
        ("libssl3", "3.0.20-1~deb12u2+milepost1"),
        ("openssh-server", "1:9.2p1-2+deb12u4"),
    ]
    assert plan[1] == {
        "package": "libssl3",
        "from_version": "3.0.20-1~deb12u2",
        "to_version": "3.0.20-1~deb12u2+milepost1",
        "security": True,
    }


def test_security_scope_takes_only_versions_from_a_security_source():
    plan = osp.select_upgrades(RECORDS, "security", ["ruc-*"], cmp)
    assert [(p["package"], p["to_version"]) for p in plan] == [
        ("libssl3", "3.0.20-1~deb12u2+milepost1"),
        ("openssh-server", "1:9.2p1-2+deb12u3"),
    ]
    assert all(p["security"] for p in plan)


def test_only_keeps_the_packages_of_one_advisory():
    plan = osp.select_upgrades(RECORDS, "all", ["ruc-*"], cmp)
    assert [p["package"] for p in osp.only_matching(plan, ["libssl3", "openssh-*"])] == [
        "libssl3",
        "openssh-server",
    ]
    assert osp.only_matching(plan, []) == plan
    assert osp.only_matching(plan, ["libexpat1"]) == []


def test_nothing_to_do_plans_nothing():
    assert osp.select_upgrades({"tzdata": RECORDS["tzdata"]}, "all", [], cmp) == []
    assert osp.select_upgrades(RECORDS, "all", ["*"], cmp) == []


def test_diff_installed_reports_upgrades_new_and_removed_packages():
    before = {"libssl3": "3.0.20-1~deb12u2", "old": "1.0"}
    after = {"libssl3": "3.0.20-1~deb12u2+milepost1", "newdep": "2.0"}
    assert osp.diff_installed(before, after) == [
        {"package": "libssl3", "from_version": "3.0.20-1~deb12u2", "to_version": after["libssl3"]},
        {"package": "newdep", "from_version": None, "to_version": "2.0"},
        {"package": "old", "from_version": "1.0", "to_version": None},
    ]


def test_dpkg_query_keeps_only_fully_installed_packages():
    text = (
        "libssl3\t3.0.20-1~deb12u2\tinstalled\nbroken\t1.0\thalf-configured\nx\t\tnot-installed\n"
    )
    assert osp.parse_dpkg_query(text) == {"libssl3": "3.0.20-1~deb12u2"}


def test_apt_command_pins_exact_versions_without_a_shell():
    plan = osp.select_upgrades(RECORDS, "security", ["ruc-*"], cmp)
    argv = osp.apt_command(plan, 90)
    assert argv[:5] == ["apt-get", "install", "--yes", "--quiet", "--only-upgrade"]
    assert "DPkg::Lock::Timeout=90" in argv
    assert argv[argv.index("--") + 1 :] == [
        "libssl3=3.0.20-1~deb12u2+milepost1",
        "openssh-server=1:9.2p1-2+deb12u3",
    ]


# ------------------------------------------------------------------ dnf (RHEL family)

# `dnf -q check-update --security` on Rocky Linux 9, exit code 100; the long package name
# wraps its version and repository onto the next line.
DNF_CHECK_UPDATE = """
kernel.x86_64                           5.14.0-427.22.1.el9_4            baseos
openssl.x86_64                          1:3.0.7-27.el9_4                 baseos
openssl-libs.x86_64                     1:3.0.7-27.el9_4                 baseos
python3-perf-debuginfo-common.x86_64
                                        5.14.0-427.22.1.el9_4            baseos-debug
Obsoleting Packages
grub2-tools.x86_64                      1:2.06-80.el9_4                  baseos
    grub2-tools.x86_64                  1:2.06-77.el9                    @baseos
"""

RPM_QA = (
    "kernel\t0\t5.14.0-427.20.1.el9_4\n"
    "openssl\t1\t3.0.7-25.el9_3\n"
    "openssl-libs\t1\t3.0.7-25.el9_3\n"
    "gpg-pubkey\t(none)\t8483c65d-5ccc5b19\n"
    "bash\t(none)\t5.1.8-9.el9\n"
)


def test_dnf_check_update_output_is_parsed_including_wrapped_lines():
    found = osp.parse_dnf_check_update(DNF_CHECK_UPDATE)
    assert [(u["name"], u["arch"], u["version"], u["repo"]) for u in found] == [
        ("kernel", "x86_64", "5.14.0-427.22.1.el9_4", "baseos"),
        ("openssl", "x86_64", "1:3.0.7-27.el9_4", "baseos"),
        ("openssl-libs", "x86_64", "1:3.0.7-27.el9_4", "baseos"),
        ("python3-perf-debuginfo-common", "x86_64", "5.14.0-427.22.1.el9_4", "baseos-debug"),
    ]


def test_rpm_query_keeps_epochs_as_dnf_prints_them_and_skips_gpg_keys():
    assert osp.parse_rpm_qa(RPM_QA) == {
        "kernel": "5.14.0-427.20.1.el9_4",
        "openssl": "1:3.0.7-25.el9_3",
        "openssl-libs": "1:3.0.7-25.el9_3",
        "bash": "5.1.8-9.el9",
    }


def test_dnf_plan_covers_installed_packages_only_and_honours_excludes():
    installed = osp.parse_rpm_qa(RPM_QA)
    plan = osp.plan_dnf(osp.parse_dnf_check_update(DNF_CHECK_UPDATE), installed, ["kernel*"])
    assert plan == [
        {
            "package": "openssl",
            "from_version": "1:3.0.7-25.el9_3",
            "to_version": "1:3.0.7-27.el9_4",
            "arch": "x86_64",
        },
        {
            "package": "openssl-libs",
            "from_version": "1:3.0.7-25.el9_3",
            "to_version": "1:3.0.7-27.el9_4",
            "arch": "x86_64",
        },
    ]


def test_dnf_commands_select_security_updates_and_pin_exact_nevras():
    assert osp.dnf_list_command("security", ["ruc-*"]) == [
        "dnf",
        "-q",
        "check-update",
        "--security",
        "--exclude=ruc-*",
    ]
    assert osp.dnf_list_command("all", []) == ["dnf", "-q", "check-update"]
    plan = [{"package": "openssl", "to_version": "1:3.0.7-27.el9_4", "arch": "x86_64"}]
    assert osp.dnf_upgrade_command(plan, "security") == [
        "dnf",
        "-y",
        "-q",
        "upgrade",
        "--security",
        "--",
        "openssl-1:3.0.7-27.el9_4.x86_64",
    ]


@pytest.mark.parametrize("rc, required", [(0, False), (1, True), (2, None)])
def test_dnf_needs_restarting_exit_codes(rc, required):
    assert osp.dnf_reboot_required(rc) is required


# ------------------------------------------------------------------ replaced code

LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"
MAPS = f"""\
55d0c0a00000-55d0c0a01000 r--p 00000000 00:2c 1311      /usr/bin/python3.11
7f1c2a000000-7f1c2a100000 r--p 00000000 00:2c 2277      {LIBSSL} (deleted)
7f1c2b000000-7f1c2b100000 r-xp 00000000 00:2c 2278      {LIBSSL} (deleted)
7f1c2c000000-7f1c2c001000 rw-s 00000000 00:01 4         /dev/shm/x (deleted)
7f1c2d000000-7f1c2d001000 rw-s 00000000 00:01 5         /memfd:pulse (deleted)
7f1c2e000000-7f1c2e021000 rw-p 00000000 00:00 0         [heap]
"""


def test_deleted_mappings_name_replaced_files_once_and_ignore_shared_memory():
    assert osp.deleted_mappings(MAPS) == ["/usr/lib/x86_64-linux-gnu/libssl.so.3"]
    assert osp.deleted_mappings("") == []


def test_systemd_unit_comes_from_the_cgroup():
    assert osp.systemd_unit("0::/system.slice/ruc-account-api.service\n") == "ruc-account-api"
    assert osp.systemd_unit("0::/user.slice/user-1000.slice/user@1000.service/app.slice\n") is None
    assert osp.systemd_unit("0::/\n") is None


def test_program_paths_look_through_interpreters_to_the_script():
    assert osp.program_paths(
        "/usr/bin/python3.11",
        ["/usr/bin/python3", "/usr/bin/ruc-account-api", "run", "--config", "/etc/x"],
    ) == ["/usr/bin/ruc-account-api", "/usr/bin/python3.11"]
    assert osp.program_paths("/usr/sbin/sshd (deleted)", ["sshd: /usr/sbin/sshd -D"]) == [
        "/usr/sbin/sshd"
    ]
    assert osp.program_paths("/usr/bin/python3.11", ["python3", "-c", "pass"]) == [
        "/usr/bin/python3.11"
    ]


def test_service_files_are_init_scripts_and_service_units():
    files = [
        "/etc/init.d/ruc-account-api",
        "/lib/systemd/system/ruc-account-api.service",
        "/lib/systemd/system/getty@.service",
        "/usr/lib/systemd/system/sshd.service",
        "/etc/init.d/README",
        "/usr/bin/ruc-account-api",
    ]
    assert osp.service_files(files) == ["ruc-account-api", "sshd"]


def test_the_running_processes_can_be_scanned_without_error():
    found = osp.processes_running_replaced_code()
    assert all({"pid", "exe", "cmdline", "cgroup"} <= set(item) for item in found)
    json.dumps(found)


def test_an_approved_change_plan_is_applied_exactly_or_not_at_all():
    plan = osp.select_upgrades(RECORDS, "all", ["ruc-*"], cmp)
    assert osp.exactly(plan, None) == (plan, None)
    target = {p["package"]: p["to_version"] for p in plan if p["package"] == "libssl3"}
    chosen, problem = osp.exactly(plan, target)
    assert problem is None and [p["package"] for p in chosen] == ["libssl3"]
    assert osp.exactly(plan, {}) == ([], None)
    # The host would now install another version, or nothing: stale, nothing installed.
    chosen, problem = osp.exactly(plan, {"libssl3": "3.0.15-1~deb12u1"})
    assert chosen == [] and "libssl3 3.0.15-1~deb12u1" in problem and "stale" in problem
    chosen, problem = osp.exactly(plan, {"libexpat1": "2.5.0-1+deb12u5"})
    assert chosen == [] and "would now install nothing" in problem
