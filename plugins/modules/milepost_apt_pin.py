#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_apt_pin
short_description: Install exact versions of named APT packages and report every version change
version_added: "0.1.0"
description:
  - Brings each package named in O(packages) to exactly the version given, with
    C(apt-get install NAME=VERSION ...) run non-interactively
    (C(DEBIAN_FRONTEND=noninteractive), dpkg option C(--force-confold), so a
    locally changed configuration file is kept).
  - Everything is validated B(before) anything changes. Package names must be Debian
    package names (lowercase letters, digits, C(+), C(-), C(.); no shell
    metacharacters); versions must be Debian versions; every package must be known to
    the APT cache and every requested version must exist in it; a downgrade needs
    its package in O(allowed_downgrades) (or O(allow_downgrade=true), a restore of
    the versions found before the run). No requested version may be older
    than a fixed version in O(security_floor) unless the host is already older (it is
    never made less secure) or a patch exception covers it. Any problem fails the task
    with one message listing every problem, in check mode too, and the host is left
    untouched.
  - The action plugin of the same name fills O(security_floor) from the advisories and
    patch exceptions in the maintenance ledger and O(allowed_downgrades) from the run's
    C(milepost_allow_downgrade); see docs/SAFETY.md.
  - Packages already at the requested version (and fully configured) are left alone,
    so the module is idempotent. A package at the requested version that dpkg has not
    finished configuring (for example after a failed maintainer script) is installed
    again.
  - Returns C(milepost_package_changes), the list of version changes that happened; the
    maintenance_ledger callback records it. In check mode it is empty and
    C(planned_changes) lists the changes that would happen.
  - When dpkg fails (for example a package whose postinst exits non-zero), the task
    fails and still returns the changes that did happen, the packages that failed with
    their versions and dpkg state, and the last lines of the error output.
  - The module does not refresh the APT cache; run the ruc_apt_source role (or
    M(ansible.builtin.apt) with O(ansible.builtin.apt#module:update_cache=true)) first.
options:
  packages:
    description:
      - "Package name to exact version, for example C({ruc-account-api: 1.5.0})."
      - An empty mapping does nothing.
    type: dict
    required: true
  allow_downgrade:
    description:
      - Restore the versions found before the run (as a health gate's rollback does). Any
        package may go down and O(security_floor) does not apply, since the host goes
        back to the state it was found in. Passes C(--allow-downgrades) to apt-get.
    type: bool
    default: false
  allowed_downgrades:
    description:
      - Packages the run names as allowed to go to an older version
        (C(milepost maintain --allow-downgrade PACKAGE)). Each downgrade is returned in
        C(milepost_overrides).
    type: list
    elements: str
    default: []
  security_floor:
    description:
      - Package name to the advisories that fix it, each with C(advisory), C(fixed)
        and C(exception) (a patch exception id or null). A requested version
        older than C(fixed) is refused unless the installed version is older still (the
        change does not make the host less secure) or C(exception) names a patch
        exception, which is then returned in C(milepost_overrides).
    type: dict
    default: {}
  lock_timeout:
    description:
      - Seconds apt-get waits for the dpkg lock held by another process
        (C(DPkg::Lock::Timeout)).
    type: int
    default: 60
  error_lines:
    description: How many of the last lines of apt-get's output to return on failure.
    type: int
    default: 20
  scope:
    description:
      - The packages of O(packages) to bring to their version. Null (the default) means
        every package of O(packages) when O(installed_only=false), else those already
        installed. A name without a version in O(packages) is refused.
    type: list
    elements: str
  installed_only:
    description: Without O(scope), leave out the packages of O(packages) that are not installed.
    type: bool
    default: false
  restart:
    description:
      - Restart the service named as each package whose version changed
        (C(service NAME restart)).
    type: bool
    default: false
  health_gate:
    description:
      - After the change, in the same module run, ask each package in scope installed now
        for its health (C(DIR/PACKAGE health --wait SECONDS)). When one is unhealthy, or
        the install or a restart failed, the changed packages go back to the versions
        found before (removed when they were not installed), are asked again, and the
        task fails with one line saying what failed, what was rolled back and whether
        the host is restored. Returns RV(milepost_health_gate).
    type: bool
    default: false
  health_command_dir:
    description: Directory of the packages' commands (C(DIR/PACKAGE health)).
    type: path
    default: /usr/bin
  health_wait_seconds:
    description: How long each health check may wait for its service.
    type: int
    default: 20
  plan_from_pins:
    description:
      - In check mode, plan the versions from the pins alone, not against the APT cache
        (the cache cannot know a package source that check mode did not write yet).
    type: bool
    default: false
requirements:
  - python3-apt on the managed host (the module re-runs itself under a system
    Python that has it when the discovered interpreter does not)
  - apt-get
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: Validates everything and reports what would change; changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: debian
seealso:
  - module: ansible.builtin.apt
  - module: milepost_package_versions
"""

EXAMPLES = r"""
- name: PATCH | Bring the RUC packages to their pinned versions
  milepost_apt_pin:
    packages:
      ruc-account-api: "1.5.0"
      ruc-payment-gateway: "2.4.0"
  register: app_update_result

- name: PATCH | Roll back to the recorded previous versions
  milepost_apt_pin:
    packages: "{{ app_update_result.previous_versions }}"
    allow_downgrade: true
"""

RETURN = r"""
previous_versions:
  description: The version of each package in scope before the run (null when not installed).
  returned: always
  type: dict
milepost_health_gate:
  description:
    - With O(health_gate) and a change - C(result) (passed, rolled_back,
      rollback_failed), C(checked), C(unhealthy), C(reasons), C(rolled_back) (the
      rollback's version changes) and, after a rollback, C(versions_now),
      C(versions_expected), C(still_unhealthy), C(rollback_error). The
      maintenance_ledger callback counts a host rolled back from it.
  returned: with health_gate, when something changed or failed
  type: dict
milepost_rollback:
  description:
    - V(true) when O(allow_downgrade) restored the versions found before the run (the
      health gate's rollback). The maintenance_ledger callback records the task result of
      such a change with C(rollback) true, which the notices read.
  returned: with allow_downgrade, when apt-get ran
  type: bool
planned_changes:
  description: In check mode, the changes that would happen (shaped as milepost_package_changes).
  returned: in check mode, when something would change
  type: list
  elements: dict
milepost_package_changes:
  description:
    - One entry per package whose installed version changed, in the order of O(packages)
      sorted by name. The maintenance_ledger callback records these entries. Empty in
      check mode.
    - Also returned when the task fails, with the changes that did happen.
  returned: always
  type: list
  elements: dict
  contains:
    package:
      description: Package name.
      type: str
    from_version:
      description: Version before the change, V(null) when the package was not installed.
      type: str
    to_version:
      description: Version after the change, V(null) when the package is no longer installed.
      type: str
  sample:
    - package: ruc-account-api
      from_version: 1.4.0
      to_version: 1.5.0
versions:
  description:
    - Package name to the version installed after the task (in check mode, the version
      that would be installed), for every package of O(packages).
  returned: success
  type: dict
  sample: {"ruc-account-api": "1.5.0"}
failed_packages:
  description:
    - Packages that dpkg could not install or configure, with the version before the
      task, the requested version, the version dpkg now records and its dpkg state
      (for example V(half-configured)).
  returned: failure of apt-get or dpkg
  type: list
  elements: dict
  sample:
    - package: ruc-payment-gateway
      from_version: 2.3.0
      to_version: 2.3.1
      installed_version: 2.3.1
      state: half-configured
error_lines:
  description: The last lines of apt-get's output (stdout and stderr).
  returned: failure of apt-get or dpkg
  type: list
  elements: str
milepost_overrides:
  description:
    - The overrides this change uses, for the ledger. A named downgrade has
      C(override=downgrade), C(package), C(from_version) and C(to_version); a patch
      exception used has C(override=exception), C(package), C(to_version), C(advisory)
      and C(exception).
  returned: success
  type: list
  elements: dict
rc:
  description: Exit code of apt-get.
  returned: when apt-get ran
  type: int
"""

import re  # noqa: E402 - Ansible modules put the docs first

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_apt import apt, apt_pkg, require_apt  # noqa: E402
from ansible.module_utils.milepost_health import gate, message, restart  # noqa: E402
from ansible.module_utils.milepost_debian import DEBIAN_VERSION_RE, PACKAGE_NAME_RE  # noqa: E402

# Debian Policy 5.6.1: at least two characters, lowercase letters, digits, + - .,
# starting with a letter or digit. An optional :arch qualifier is refused (not needed).
# Debian Policy 5.6.12: [epoch:]upstream[-revision]; upstream starts with a digit.
DPKG_ERROR_RE = re.compile(r"dpkg: error processing (?:package|archive) (\S+)")
INSTALLED_STATE = "installed"


# ---------------------------------------------------------------------------
# Pure logic (unit tested without a host)
# ---------------------------------------------------------------------------


def validate_request(packages):
    """Split the requested {name: version} mapping into (valid {name: version str}, problems).

    Names must be Debian package names (no shell metacharacters can pass); versions must
    be Debian versions. An empty mapping is valid (nothing to do).
    """
    valid = {}
    problems = []
    for name in sorted(packages or {}, key=str):
        version = packages[name]
        if not isinstance(name, str) or not PACKAGE_NAME_RE.fullmatch(name):
            problems.append(
                "%r is not a valid Debian package name (lowercase letters, digits, '+', '-', '.')"
                % (name,)
            )
            continue
        if version is None or isinstance(version, (bool, dict, list)):
            problems.append("%s: version %r is not a Debian version" % (name, version))
            continue
        version = str(version)
        if not DEBIAN_VERSION_RE.fullmatch(version):
            problems.append("%s: version %r is not a Debian version" % (name, version))
            continue
        valid[name] = version
    return valid, problems


def check_against_cache(requested, records, allow_downgrade, compare, allowed_downgrades=()):
    """Check the request against plain APT records; return a list of problems.

    records maps a package name to {installed, versions, state} or lacks it when APT
    does not know the package. A downgrade is a problem unless allow_downgrade (restore)
    or its package is in allowed_downgrades.
    """
    problems = []
    for name in sorted(requested):
        version = requested[name]
        record = records.get(name)
        if record is None:
            problems.append("%s: no such package in the APT cache" % name)
            continue
        known = record.get("versions") or []
        if version not in known:
            problems.append(
                "%s: version %s is not in the APT cache (known: %s)"
                % (name, version, ", ".join(known) or "none")
            )
            continue
        installed = record.get("installed")
        if (
            not allow_downgrade
            and name not in allowed_downgrades
            and installed is not None
            and installed != version
            and compare(version, installed) < 0
        ):
            problems.append(
                "%s: %s would downgrade the installed %s (a downgrade must be named for the"
                " run: --allow-downgrade %s)" % (name, version, installed, name)
            )
    return problems


def check_security(requested, records, floor, compare):
    """Check the request against the advisories' fixed versions (safety invariant 1).

    Returns (problems, overrides): a requested version older than a fixed version is a
    problem unless the installed version is older still (the host is not made less
    secure) or a patch exception covers it (an override). A package already at the
    requested version is not a change and is not judged here.
    """
    problems = []
    overrides = []
    for name in sorted(requested):
        version = requested[name]
        installed = (records.get(name) or {}).get("installed")
        if installed == version:
            continue
        for entry in floor.get(name) or ():
            fixed = str(entry.get("fixed"))
            if compare(version, fixed) >= 0:
                continue
            if (
                installed is not None
                and compare(installed, fixed) < 0
                and compare(version, installed) >= 0
            ):
                continue  # already exposed, and not going lower: no less secure than found
            if entry.get("exception"):
                overrides.append(
                    {
                        "override": "exception",
                        "package": name,
                        "to_version": version,
                        "advisory": entry.get("advisory"),
                        "exception": entry.get("exception"),
                    }
                )
                continue
            problems.append(
                "%s: %s is vulnerable to advisory %s (fixed in %s; installed %s)"
                % (name, version, entry.get("advisory"), fixed, installed or "none")
            )
    return problems, overrides


def downgrade_overrides(planned, allowed_downgrades, compare):
    """The named downgrades among the planned changes, as overrides for the ledger."""
    return [
        dict(change, override="downgrade")
        for change in planned
        if change["package"] in allowed_downgrades
        and change["from_version"] is not None
        and compare(change["to_version"], change["from_version"]) < 0
    ]


def in_scope(requested, scope, records, installed_only):
    """(the requested packages in scope, problems): scope names without a version in the
    request are problems; without scope, every requested package, or with installed_only
    those installed."""
    if scope is not None:
        missing = sorted(set(scope) - set(requested))
        problems = ["%s: no pinned version to install" % name for name in missing]
        return dict((k, v) for k, v in requested.items() if k in scope), problems
    if installed_only:
        kept = dict((k, v) for k, v in requested.items() if (records.get(k) or {}).get("installed"))
        return kept, []
    return dict(requested), []


def plan_from_pins(requested, records):
    """The changes the pins alone say (check mode, the source not written yet)."""
    return [
        {"package": name, "from_version": (records.get(name) or {}).get("installed"),
         "to_version": version}
        for name, version in sorted(requested.items())
        if (records.get(name) or {}).get("installed") != version
    ]  # fmt: skip


def plan_changes(requested, records):
    """Return (names to install, planned changes) for the request against the records.

    A package needs work when its installed version differs from the requested one or
    when dpkg has not finished configuring it. Changes list only version changes.
    """
    to_install = []
    changes = []
    for name in sorted(requested):
        version = requested[name]
        record = records.get(name) or {}
        installed = record.get("installed")
        state = record.get("state")
        if installed != version:
            to_install.append(name)
            changes.append({"package": name, "from_version": installed, "to_version": version})
        elif state != INSTALLED_STATE:
            to_install.append(name)
    return to_install, changes


def diff_versions(before, after, names):
    """Return the version changes between two {name: version-or-None} mappings."""
    changes = []
    for name in sorted(names):
        old = before.get(name)
        new = after.get(name)
        if old != new:
            changes.append({"package": name, "from_version": old, "to_version": new})
    return changes


def build_command(requested, names, allow_downgrade, lock_timeout):
    """Return the apt-get argv that installs names at their requested versions."""
    argv = [
        "apt-get",
        "install",
        "--yes",
        "--quiet",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "DPkg::Lock::Timeout=%d" % lock_timeout,
    ]
    if allow_downgrade:
        argv.append("--allow-downgrades")
    if names:
        argv.append("--")
    argv.extend("%s=%s" % (name, requested[name]) for name in names)
    return argv


def failed_package_names(output):
    """Return the package names dpkg reported errors for, in order, without duplicates."""
    names = []
    for match in DPKG_ERROR_RE.finditer(output):
        name = match.group(1).split(":")[0].rstrip(",")
        if name not in names:
            names.append(name)
    return names


def tail_lines(text, count):
    """Return the last count non-empty lines of text."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-count:] if count > 0 else []


def describe_failures(requested, before, after_records, reported, tail):
    """Build (failed_packages, one-line message) after apt-get failed."""
    names = [name for name in reported if name in requested]
    for name in sorted(requested):
        record = after_records.get(name) or {}
        if name not in names and (
            record.get("state") != INSTALLED_STATE or record.get("installed") != requested[name]
        ):
            names.append(name)
    failed = []
    for name in names:
        record = after_records.get(name) or {}
        failed.append(
            {
                "package": name,
                "from_version": before.get(name),
                "to_version": requested[name],
                "installed_version": record.get("installed"),
                "state": record.get("state") or "not-installed",
            }
        )
    parts = [
        "%s %s -> %s (now %s, %s)"
        % (
            item["package"],
            item["from_version"] or "not installed",
            item["to_version"],
            item["installed_version"] or "not installed",
            item["state"],
        )
        for item in failed
    ]
    last = tail[-1] if tail else "no output"
    detail = [line for line in tail if "error" in line.lower() or "failed" in line.lower()]
    reason = detail[0] if detail else last
    message = "apt-get failed for %s: %s" % ("; ".join(parts) or "the requested packages", reason)
    return failed, message


# ---------------------------------------------------------------------------
# python3-apt access
# ---------------------------------------------------------------------------

STATE_NAMES = {
    "CURSTATE_NOT_INSTALLED": "not-installed",
    "CURSTATE_UNPACKED": "unpacked",
    "CURSTATE_HALF_CONFIGURED": "half-configured",
    "CURSTATE_HALF_INSTALLED": "half-installed",
    "CURSTATE_CONFIG_FILES": "config-files",
    "CURSTATE_INSTALLED": INSTALLED_STATE,
}


def _state_name(value):
    for attribute, name in STATE_NAMES.items():
        if getattr(apt_pkg, attribute, object()) == value:
            return name
    return str(value)


def read_records(names):
    """Return {name: {installed, versions, state}} for the names APT knows."""
    cache = apt.Cache(memonly=True)
    records = {}
    for name in names:
        if name not in cache:
            continue
        package = cache[name]
        installed = package.installed
        state = _state_name(package._pkg.current_state)  # noqa: SLF001 - no public accessor
        records[name] = {
            "installed": installed.version if installed is not None else None,
            "versions": [version.version for version in package.versions],
            "state": state,
        }
    return records


def installed_versions(records, names):
    return {name: (records.get(name) or {}).get("installed") for name in names}


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "dict", "required": True},
            "allow_downgrade": {"type": "bool", "default": False},
            "allowed_downgrades": {"type": "list", "elements": "str", "default": []},
            "security_floor": {"type": "dict", "default": {}},
            "lock_timeout": {"type": "int", "default": 60},
            "error_lines": {"type": "int", "default": 20},
            "scope": {"type": "list", "elements": "str"},
            "installed_only": {"type": "bool", "default": False},
            "restart": {"type": "bool", "default": False},
            "health_gate": {"type": "bool", "default": False},
            "health_command_dir": {"type": "path", "default": "/usr/bin"},
            "health_wait_seconds": {"type": "int", "default": 20},
            "plan_from_pins": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )

    require_apt(module)

    raw = module.params["packages"]
    allow_downgrade = module.params["allow_downgrade"]
    # Every problem is collected first, so one message lists them all; nothing has
    # changed when the module fails here.
    requested, problems = validate_request(raw)

    try:
        before_records = read_records(sorted(requested))
    except Exception as exc:  # noqa: BLE001 - python3-apt raises plain SystemError/OSError
        module.fail_json(msg="Could not open the APT cache: %s" % exc, milepost_package_changes=[])
    requested, missing = in_scope(
        requested, module.params["scope"], before_records, module.params["installed_only"]
    )
    problems.extend(missing)
    names = sorted(requested)
    previous = installed_versions(before_records, names)
    if module.check_mode and module.params["plan_from_pins"] and not problems:
        planned = plan_from_pins(requested, before_records)
        module.exit_json(
            changed=bool(planned),
            milepost_package_changes=[],
            planned_changes=planned,
            previous_versions=previous,
            msg="planned from the pins alone: the package source is not written yet",
        )

    allowed = set(module.params["allowed_downgrades"])
    problems.extend(
        check_against_cache(
            requested, before_records, allow_downgrade, apt_pkg.version_compare, allowed
        )
    )
    overrides = []
    if not allow_downgrade:
        refused, overrides = check_security(
            requested, before_records, module.params["security_floor"], apt_pkg.version_compare
        )
        problems.extend(refused)
    if problems:
        module.fail_json(
            msg="Refusing to change packages: " + "; ".join(problems), milepost_package_changes=[]
        )

    to_install, planned = plan_changes(requested, before_records)
    overrides += downgrade_overrides(planned, allowed, apt_pkg.version_compare)
    before = installed_versions(before_records, names)
    if not to_install:
        module.exit_json(
            changed=False,
            milepost_package_changes=[],
            versions=before,
            previous_versions=previous,
            milepost_overrides=[],
        )
    if module.check_mode:
        # Planned, not done: the ledger records milepost_package_changes as done changes.
        module.exit_json(
            changed=True,
            milepost_package_changes=[],
            planned_changes=planned,
            versions=dict(requested),
            previous_versions=previous,
            milepost_overrides=overrides,
        )

    # A named downgrade (an override checked above) needs apt-get's --allow-downgrades too.
    downgrading = allow_downgrade or any(o["override"] == "downgrade" for o in overrides)
    argv = build_command(requested, to_install, downgrading, module.params["lock_timeout"])
    env = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none"}
    # argv list: no shell; and no expansion of ~ or $NAME in the arguments either.
    rc, out, err = module.run_command(argv, environ_update=env, expand_user_and_vars=False)

    try:
        after_records = read_records(names)
    except Exception as exc:  # noqa: BLE001 - python3-apt raises plain SystemError/OSError
        module.fail_json(
            msg="apt-get exited %d and the APT cache could not be read again: %s" % (rc, exc),
            rc=rc,
            milepost_package_changes=[],
            error_lines=tail_lines(out + "\n" + err, module.params["error_lines"]),
        )
    after = installed_versions(after_records, names)
    changes = diff_versions(before, after, names)
    changed = bool(changes) or rc == 0
    result = {
        "rc": rc,
        "versions": after,
        "previous_versions": previous,
        "milepost_overrides": overrides,
    }
    if allow_downgrade:
        # A restore to the versions found before the run: the callback records the host
        # as rolled back from this key (never from the task's title).
        result["milepost_rollback"] = True

    failure = ""
    if rc != 0:
        tail = tail_lines(out + "\n" + err, module.params["error_lines"])
        failed, failure = describe_failures(
            requested, before, after_records, failed_package_names(out + "\n" + err), tail
        )
        result.update(failed_packages=failed, error_lines=tail)
    elif module.params["restart"]:
        failure = "; ".join(
            restart(module, [c["package"] for c in changes if c["to_version"]]).values()
        )
    if module.params["health_gate"]:
        report, rolled = gate(
            module,
            changes,
            previous,
            [name for name in names if after.get(name)],
            module.params["health_command_dir"],
            module.params["health_wait_seconds"],
            failure,
            lambda wanted: installed_versions(read_records(wanted), wanted),
            module.params["lock_timeout"],
        )
        result["milepost_health_gate"] = report
        changes = changes + rolled
        if report["result"] != "passed":
            failure = message(report)
    if failure:
        module.fail_json(
            msg=failure, changed=bool(changes), milepost_package_changes=changes, **result
        )
    module.exit_json(changed=changed, milepost_package_changes=changes, **result)


if __name__ == "__main__":
    main()
