#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_probe
short_description: Read in one module run everything the maintenance cycle decides on
version_added: "0.3.0"
description:
  - Read-only. Gathers the state of a host that the maintenance cycle decides from, so
    that the controller decides and only the steps with work to do run a module -
    dpkg's state (C(dpkg --audit), packages left half-installed, the processes holding
    the dpkg locks), the installed, candidate and known versions of the RUC packages
    (O(packages)) and which of O(pins) are not yet at their pinned version, the
    operating-system upgrades the configured suites offer (the plan
    M(milepost_os_patch) would apply, for O(os_scope) and O(os_exclude)), the health of
    the installed RUC services, the free space of O(free_space_paths), whether a reboot
    is pending, the maintenance lock file and the age of the APT cache.
  - Returns everything as the fact C(milepost_probe) (the newest probe of the host), and
    with O(installed_facts=true) every installed package as the fact C(packages), in the
    shape of M(ansible.builtin.package_facts), which the maintenance_ledger callback
    records. The callback records the probe itself as the run's C(host_probe) record of
    the host, the "before" (and, at the end of the cycle, the "after") of the run.
  - A part that cannot be read is reported in C(unreadable); the action plugin of the same
    name (the controller's half) then fails the host with one line; a probe the controller
    cannot read never counts as "nothing to do".
  - The action plugin also decides, on the controller and before the host is asked
    anything, the maintenance window (O(window_check)), and fails the host when a
    filesystem has less than O(min_free_mb) MiB free.
options:
  window_check:
    description:
      - The arguments of M(milepost_window_check) (C(window), C(blackouts), C(group),
        C(now), C(override), C(override_reason)), decided on the controller first; a
        closed window fails the host untouched. The decision is returned as RV(window).
      - Omitted, no window is checked.
    type: dict
  min_free_mb:
    description: Fail the host when one of O(free_space_paths) has less free MiB (controller side).
    type: int
  packages:
    description: Names or shell-style globs of the RUC packages to report.
    type: list
    elements: str
    default: ["ruc-*"]
  pins:
    description: Package name to pinned version; C(pins_pending) lists those not at their pin.
    type: dict
    default: {}
  pin_scope:
    description:
      - The pinned packages to install even when not installed yet (the app_update role's
        C(app_update_packages)); null means only the installed ones are in scope.
    type: list
    elements: str
  os_scope:
    description: The operating-system updates to plan (V(all), V(security)); null plans none.
    type: str
    choices: [all, security]
  os_exclude:
    description: Shell-style patterns of packages the operating-system plan leaves out.
    type: list
    elements: str
    default: []
  health:
    description: Ask every installed package matching O(packages) for its health.
    type: bool
    default: true
  health_command_dir:
    description: Directory of the RUC services' commands (C(DIR/PACKAGE health)).
    type: path
    default: /usr/bin
  free_space_paths:
    description: Filesystems (any path on them) whose free space in MiB is reported.
    type: list
    elements: path
    default: [/]
  dpkg_lock_paths:
    description: Lock files of dpkg and its front ends whose holders are reported.
    type: list
    elements: path
    default: [/var/lib/dpkg/lock-frontend, /var/lib/dpkg/lock]
  lock_path:
    description: The maintenance lock file of milepost_host_lock, read as it is.
    type: path
    default: /var/lib/milepost/maintenance.lock
  installed_facts:
    description: Also return every installed package as the fact C(packages).
    type: bool
    default: false
requirements:
  - python3-apt on the host (the module re-runs itself under a system Python that has it)
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: debian
seealso:
  - module: milepost_os_patch
  - module: milepost_apt_pin
  - module: milepost_host_lock
"""

EXAMPLES = r"""
- name: AUDIT | Probe the host before maintenance
  milepost_probe:
    pins: "{{ app_update_versions }}"
    os_scope: "{{ os_patch_scope }}"
    os_exclude: "{{ os_patch_exclude }}"
    free_space_paths: [/, /var]

- name: AUDIT | Read the final state of the host and its installed packages
  milepost_probe:
    os_scope: null
    health: false
    installed_facts: true
"""

RETURN = r"""
window:
  description:
    - The window decision - C(open), C(configured), C(reason), C(next_open),
      C(overridden), C(group).
  returned: with window_check
  type: dict
milepost_window_override:
  description: C(reason), C(group), C(next_open) of an overridden window, for the ledger.
  returned: when the window was overridden
  type: dict
ansible_facts:
  description: C(milepost_probe) (the keys below), and C(packages) with O(installed_facts).
  returned: always
  type: dict
dpkg:
  description: C(audit) (lines of dpkg --audit), C(half_installed) (names), C(lock_holders).
  returned: always
  type: dict
  sample: {"audit": [], "half_installed": [], "lock_holders": []}
ruc_packages:
  description: Per RUC package, C(installed), C(candidate), C(versions), C(outdated), C(configured).
  returned: always
  type: dict
pins_pending:
  description: The pinned packages in scope that are not fully installed at their pin.
  returned: always
  type: list
  elements: str
os_upgrades:
  description:
    - The operating-system upgrades planned, as milepost_os_patch plans them.
    - Null without O(os_scope), or when the APT cache could not be read.
  returned: always
  type: list
  elements: dict
services:
  description: Per installed RUC package, C(healthy) and C(detail) (the first line it printed).
  returned: always
  type: dict
free_mb:
  description: Free MiB of each of O(free_space_paths).
  returned: always
  type: dict
reboot_required:
  description: Whether the host asks for a reboot (C(/run/reboot-required)).
  returned: always
  type: bool
lock:
  description: The maintenance lock file's content, null when there is none.
  returned: always
  type: dict
apt_cache_age:
  description: Seconds since the APT cache was refreshed; null when unknown.
  returned: always
  type: int
unreadable:
  description: The parts that could not be read, with why.
  returned: always
  type: dict
asked:
  description: O(pins), O(pin_scope), O(os_scope) and O(os_exclude), which the plans answer.
  returned: always
  type: dict
"""

import fnmatch  # noqa: E402 - Ansible modules put the docs first
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_apt import apt, apt_pkg, require_apt  # noqa: E402
from ansible.module_utils.milepost_packages import (  # noqa: E402
    STATUS_FORMAT,
    build_report,
    cache_age,
    half_installed,
    lock_holders,
    parse_status,
    read_apt_records,
    select_upgrades,
    upgrade_records,
)

REBOOT_FILE = "/run/reboot-required"


# ---------------------------------------------------------------------------
# Pure logic (unit tested without a host)
# ---------------------------------------------------------------------------


def installed_versions(status):
    """{name: version} of the packages dpkg has fully installed (abbrev ii)."""
    return {name: version for name, (abbrev, version) in status.items() if abbrev.startswith("ii")}


def pending_pins(pins, scope, status):
    """The pinned packages in scope not fully installed at their pinned version."""
    pending = []
    for name in sorted(pins):
        abbrev, version = status.get(name, ("", None))
        # Installed in some state (not "not installed", not only configuration files left).
        present = abbrev[1:2] not in ("", "n", "c")
        if scope is None and not present:
            continue
        if scope is not None and name not in scope:
            continue
        if not abbrev.startswith("ii") or version != str(pins[name]):
            pending.append(name)
    return pending


def package_facts(versions):
    """The installed packages in the shape of ansible.builtin.package_facts."""
    return {
        name: [{"name": name, "version": version, "source": "apt"}]
        for name, version in sorted(versions.items())
    }


def matching(names, patterns):
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------


def _free_mb(path):
    stat = os.statvfs(path)
    return int(stat.f_bavail * stat.f_frsize // (1024 * 1024))


def _lock_file(path):
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    return data if isinstance(data, dict) else {"corrupt": text[:200]}


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": ["ruc-*"]},
            "pins": {"type": "dict", "default": {}},
            "pin_scope": {"type": "list", "elements": "str"},
            "os_scope": {"type": "str", "choices": ["all", "security"]},
            "os_exclude": {"type": "list", "elements": "str", "default": []},
            "health": {"type": "bool", "default": True},
            "health_command_dir": {"type": "path", "default": "/usr/bin"},
            "free_space_paths": {"type": "list", "elements": "path", "default": ["/"]},
            "dpkg_lock_paths": {
                "type": "list",
                "elements": "path",
                "default": ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"],
            },
            "lock_path": {"type": "path", "default": "/var/lib/milepost/maintenance.lock"},
            "installed_facts": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    require_apt(module)
    env = {"LC_ALL": "C"}
    unreadable = {}

    rc, out, err = module.run_command(
        ["dpkg-query", "-W", "-f", STATUS_FORMAT],
        environ_update=env,
        expand_user_and_vars=False,
    )
    if rc != 0:
        module.fail_json(msg="dpkg-query failed (exit %d): %s" % (rc, (err or out).strip()[:200]))
    status = parse_status(out)
    rc, audit, _ = module.run_command(
        ["dpkg", "--audit"], environ_update=env, expand_user_and_vars=False
    )
    rc_locks, locks, _ = module.run_command(
        ["lslocks", "--noheadings", "--raw", "--output", "PID,COMMAND,PATH"],
        environ_update=env,
        expand_user_and_vars=False,
    )
    if rc_locks != 0:
        unreadable["dpkg_lock_holders"] = "lslocks failed"

    ruc, os_upgrades = {}, None
    pins_pending = pending_pins(params["pins"], params["pin_scope"], status)
    try:
        cache = apt.Cache(memonly=True)
        records = read_apt_records(cache, list(params["packages"]) + list(params["pins"]))
        ruc, _ = build_report(
            list(params["packages"]) + list(params["pins"]), records, apt_pkg.version_compare
        )
        for name, entry in ruc.items():
            entry["configured"] = status.get(name, ("", None))[0].startswith("ii")
        if params["os_scope"]:
            exclude = [p.strip() for p in params["os_exclude"] if p and p.strip()]
            os_upgrades = select_upgrades(
                upgrade_records(cache, apt_pkg, apt_pkg.version_compare),
                params["os_scope"],
                exclude,
                apt_pkg.version_compare,
            )
    except Exception as exc:  # noqa: BLE001 - python3-apt raises plain SystemError/OSError
        unreadable["apt_cache"] = str(exc)[:200]

    services = {}
    installed = installed_versions(status)
    if params["health"]:
        for name in matching(installed, params["packages"]):
            command = os.path.join(params["health_command_dir"], name)
            if not os.access(command, os.X_OK):
                continue
            rc, out, err = module.run_command(
                [command, "health"], environ_update=env, expand_user_and_vars=False
            )
            first = ((err or out).strip().splitlines() or [""])[0]
            services[name] = {"healthy": rc == 0, "detail": first[:200]}

    free_mb = {}
    for path in params["free_space_paths"]:
        try:
            free_mb[path] = _free_mb(path)
        except OSError as exc:
            unreadable["free_space " + path] = str(exc)

    probe = {
        "dpkg": {
            "audit": [line for line in audit.splitlines() if line.strip()],
            "half_installed": half_installed(status),
            "lock_holders": lock_holders(locks, params["dpkg_lock_paths"]),
        },
        "ruc_packages": ruc,
        "pins_pending": pins_pending,
        "os_upgrades": os_upgrades,
        "services": services,
        "free_mb": free_mb,
        "reboot_required": os.path.exists(REBOOT_FILE),
        "lock": _lock_file(params["lock_path"]),
        "apt_cache_age": cache_age(time.time()),
        "unreadable": unreadable,
        # What the plans above were made for: a role decides from them only when it asks
        # the same.
        "asked": {
            "pins": dict((k, str(v)) for k, v in params["pins"].items()),
            "pin_scope": params["pin_scope"],
            "os_scope": params["os_scope"],
            "os_exclude": params["os_exclude"],
        },
    }
    facts = {"milepost_probe": probe}
    if params["installed_facts"]:
        facts["packages"] = package_facts(installed)
    module.exit_json(changed=False, ansible_facts=facts, **probe)


if __name__ == "__main__":
    main()
