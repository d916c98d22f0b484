#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_unapproved_packages
short_description: Remove the installed Debian packages that are not approved
version_added: "0.2.0"
description:
  - Reads the dpkg status of the host and finds the installed packages that are not
    approved, then removes them with apt-get (purging them unless O(purge=false)).
  - A package is approved when its C(Priority) is one of O(approved_priorities), when it is
    C(Essential), when its name matches one of the O(approved) patterns, or when an approved
    installed package needs it through C(Depends), C(Pre-Depends) or C(Recommends), directly
    or transitively. Only installed packages are followed. In an alternative C(a | b) every
    installed alternative is needed; a virtual name stands for every installed package that
    C(Provides) it. Architecture qualifiers (C(:any), C(:amd64)) and version constraints are
    ignored.
  - A package counts as installed unless dpkg records it as not installed or with only its
    configuration files left. A package installed for several architectures is one package;
    all its installed architectures are removed.
  - Before removing anything the module simulates the removal (C(apt-get -s)); when apt would
    also remove a package that is not in the unapproved list (a package that needs one of
    them in a way the status does not show, as through a version constraint), the module
    fails, names those packages and changes nothing.
  - The removal runs non-interactively, keeping locally changed configuration files of the
    packages that stay. No shell is involved; every package name is checked against Debian's
    naming rules before it reaches apt-get.
  - Returns C(milepost_package_changes), one entry per package removed, which the
    maintenance_ledger callback records. In check mode nothing is simulated or removed and
    the task reports C(changed) when there are unapproved packages.
options:
  approved:
    description:
      - Shell-style patterns (C(fnmatch), case-sensitive) of package names that are approved,
        such as C(openssh-server) or C(ruc-*). Whatever they need is approved too.
    type: list
    elements: str
    default: []
  approved_priorities:
    description: The values of the C(Priority) field that make a package approved.
    type: list
    elements: str
    default: [required, important]
  state:
    description: V(absent) removes the unapproved packages; it is the only state.
    type: str
    choices: [absent]
    default: absent
  purge:
    description: Purge the packages (remove their configuration files too) rather than remove them.
    type: bool
    default: true
  lock_timeout:
    description: Seconds apt-get waits for the dpkg lock held by another process.
    type: int
    default: 60
requirements:
  - dpkg-query and apt-get (Debian-family hosts)
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: Reports the unapproved packages and C(changed) when there are any; runs no
      apt-get and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: debian
notes:
  - Packages left with only their configuration files are not installed and are not touched.
  - Held packages (C(apt-mark hold)) are not removed; apt-get fails and the module reports
    its message.
seealso:
  - module: milepost_package_versions
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: AUDIT | List the packages that are not approved
  milepost_unapproved_packages:
    approved:
      - openssh-server
      - ruc-*
  check_mode: true
  register: __baseline_unapproved

- name: PATCH | Remove the packages that are not approved
  milepost_unapproved_packages:
    approved:
      - openssh-server
      - ruc-*
    approved_priorities: [required, important, standard]
    purge: true
  register: __baseline_removed
"""

RETURN = r"""
unapproved:
  description: The installed packages that are not approved, sorted by name.
  returned: always
  type: list
  elements: str
  sample: ["telnet", "vim-tiny"]
approved_count:
  description: How many installed packages are approved.
  returned: always
  type: int
  sample: 212
removed:
  description: The packages the task removed, sorted by name; empty in check mode.
  returned: always
  type: list
  elements: str
  sample: ["telnet", "vim-tiny"]
milepost_package_changes:
  description:
    - One entry per package removed, sorted by name, with C(to_version) V(null); the
      maintenance_ledger callback records them. Empty in check mode. Also returned when
      apt-get fails, with the removals that did happen.
  returned: always
  type: list
  elements: dict
  sample:
    - package: telnet
      from_version: 0.17+2.4-2
      to_version: null
refused:
  description: The packages outside the unapproved list that the simulated removal would remove.
  returned: when the module refuses to remove
  type: list
  elements: str
  sample: ["ruc-reporting"]
error_lines:
  description: The last lines of apt-get's error output.
  returned: failure of apt-get
  type: list
  elements: str
"""

import fnmatch  # noqa: E402 - Ansible modules put the docs first
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_debian import PACKAGE_NAME_RE  # noqa: E402

STATUS_FORMAT = (
    "${db:Status-Abbrev}\t${Package}\t${Version}\t${Priority}\t${Essential}\t${Depends}"
    "\t${Pre-Depends}\t${Recommends}\t${Provides}\t${Architecture}\n"
)
FIELDS = 10
# Current states (second letter of db:Status-Abbrev) of a package that is not installed.
NOT_INSTALLED = ("n", "c")
# dpkg architecture names (package names: module_utils/milepost_debian). Used with fullmatch: with
# match, "$" also matches before a final newline.
ARCH_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# apt-get -s: "Purg NAME[:ARCH] [VERSION]" and "Remv NAME[:ARCH] [VERSION]".
SIMULATED_REMOVAL_RE = re.compile(r"^(?:Purg|Remv) (\S+)", re.MULTILINE)
ERROR_LINES = 20


# ---------------------------------------------------------------------------
# Pure logic (unit tested without a host)
# ---------------------------------------------------------------------------


def bare_name(name):
    """A package name without its architecture qualifier (foo:any, foo:amd64 -> foo)."""
    return name.split(":", 1)[0].strip()


def relation_names(field):
    """The alternatives of a dependency field as lists of bare names.

    "a (>= 1) | b:any, c [amd64] <!nocheck>" -> [["a", "b"], ["c"]]."""
    groups = []
    for group in field.split(","):
        names = []
        for alternative in group.split("|"):
            alternative = re.sub(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>", " ", alternative)
            words = alternative.split()
            if words:
                name = bare_name(words[0])
                if name and name not in names:
                    names.append(name)
        if names:
            groups.append(names)
    return groups


def parse_status(text):
    """{name: package} of the installed packages from dpkg-query -W -f STATUS_FORMAT.

    A package is {version, priorities, essential, needs, provides, archs}: needs are the
    alternatives of Depends, Pre-Depends and Recommends. The instances of a package installed
    for several architectures are merged. Raises ValueError on a line it cannot read."""
    packages = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != FIELDS or len(parts[0]) < 2 or not parts[1].strip():
            raise ValueError("unexpected dpkg-query line: %r" % line[:200])
        status, name, version, priority, essential = parts[:5]
        depends, pre_depends, recommends, provides, arch = parts[5:]
        if status[1] in NOT_INSTALLED:
            continue
        name = name.strip()
        package = packages.setdefault(
            name,
            {
                "version": version,
                "priorities": [],
                "essential": False,
                "needs": [],
                "provides": [],
                "archs": [],
            },
        )
        priority = priority.strip().lower()
        if priority and priority not in package["priorities"]:
            package["priorities"].append(priority)
        package["essential"] = package["essential"] or essential.strip().lower() == "yes"
        for group in relation_names(pre_depends + "," + depends + "," + recommends):
            if group not in package["needs"]:
                package["needs"].append(group)
        for group in relation_names(provides):
            for virtual in group:
                if virtual not in package["provides"]:
                    package["provides"].append(virtual)
        arch = arch.strip()
        if arch and arch not in package["archs"]:
            package["archs"].append(arch)
    return packages


def is_root(name, package, priorities, patterns):
    """Whether a package is approved by itself: priority, Essential or a name pattern."""
    if package["essential"]:
        return True
    if any(priority in priorities for priority in package["priorities"]):
        return True
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def approved_packages(packages, priorities, patterns):
    """The set of approved installed package names: the roots and all they need."""
    priorities = {p.strip().lower() for p in priorities if p and p.strip()}
    providers = {}
    for name in sorted(packages):
        for virtual in packages[name]["provides"]:
            providers.setdefault(virtual, []).append(name)

    def resolve(needed):
        found = [needed] if needed in packages else []
        return found + [p for p in providers.get(needed, []) if p != needed]

    approved = {
        name for name, package in packages.items() if is_root(name, package, priorities, patterns)
    }
    pending = sorted(approved)
    while pending:
        name = pending.pop()
        for group in packages[name]["needs"]:
            for needed in group:
                for target in resolve(needed):
                    if target not in approved:
                        approved.add(target)
                        pending.append(target)
    return approved


def find_unapproved(packages, priorities, patterns):
    """(sorted unapproved names, number of approved packages)."""
    approved = approved_packages(packages, priorities, patterns)
    return sorted(set(packages) - approved), len(approved)


def package_arguments(packages, names):
    """The apt-get arguments naming every installed architecture of the packages.

    Raises ValueError naming a package or architecture that breaks Debian's naming rules."""
    arguments = []
    for name in names:
        if not isinstance(name, str) or not PACKAGE_NAME_RE.fullmatch(name):
            raise ValueError("package name %r is not a valid Debian package name" % name)
        archs = packages.get(name, {}).get("archs") or []
        qualified = [arch for arch in archs if arch != "all"]
        for arch in qualified:
            if not isinstance(arch, str) or not ARCH_RE.fullmatch(arch):
                raise ValueError("architecture %r of package %s is not valid" % (arch, name))
        if qualified:
            arguments.extend("%s:%s" % (name, arch) for arch in qualified)
        else:
            arguments.append(name)
    return arguments


def apt_command(arguments, purge, simulate, lock_timeout):
    """The apt-get argv that simulates or runs the removal."""
    argv = ["apt-get", "-s" if simulate else "-y", "-q", "purge" if purge else "remove"]
    argv.extend(
        [
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "-o",
            "DPkg::Lock::Timeout=%d" % lock_timeout,
        ]
    )
    argv.extend(arguments)
    return argv


def simulated_removals(text):
    """The sorted bare names apt-get -s says it would remove or purge."""
    return sorted({bare_name(name) for name in SIMULATED_REMOVAL_RE.findall(text)})


def removed_changes(before, after):
    """(removed names, milepost_package_changes) between two parse_status results."""
    removed = sorted(set(before) - set(after))
    changes = [
        {"package": name, "from_version": before[name]["version"], "to_version": None}
        for name in removed
    ]
    return removed, changes


def tail_lines(text, count):
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-count:] if count > 0 else []


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------

ENVIRONMENT = {
    "DEBIAN_FRONTEND": "noninteractive",
    "APT_LISTCHANGES_FRONTEND": "none",
    "LC_ALL": "C",
}


def run(module, argv):
    # argv list: no shell; and no expansion of ~ or $NAME in the arguments either.
    return module.run_command(argv, environ_update=ENVIRONMENT, expand_user_and_vars=False)


def read_status(module, result):
    rc, out, err = run(module, ["dpkg-query", "-W", "-f=" + STATUS_FORMAT])
    if rc != 0:
        module.fail_json(
            msg="dpkg-query failed (exit %d): %s"
            % (rc, (tail_lines(err or out, 1) or ["no output"])[-1]),
            **result,
        )
    try:
        return parse_status(out)
    except ValueError as exc:
        module.fail_json(msg="Could not read the dpkg status: %s" % exc, **result)


def main():
    module = AnsibleModule(
        argument_spec={
            "approved": {"type": "list", "elements": "str", "default": []},
            "approved_priorities": {
                "type": "list",
                "elements": "str",
                "default": ["required", "important"],
            },
            "state": {"type": "str", "choices": ["absent"], "default": "absent"},
            "purge": {"type": "bool", "default": True},
            "lock_timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    patterns = [p.strip() for p in module.params["approved"] if p and p.strip()]
    priorities = module.params["approved_priorities"]
    purge = module.params["purge"]
    result = {
        "changed": False,
        "unapproved": [],
        "approved_count": 0,
        "removed": [],
        "milepost_package_changes": [],
    }
    if not module.get_bin_path("dpkg-query"):
        module.fail_json(
            msg="dpkg-query is not on this host: milepost_unapproved_packages works on "
            "Debian-family hosts only",
            **result,
        )

    before = read_status(module, result)
    unapproved, approved_count = find_unapproved(before, priorities, patterns)
    result.update(unapproved=unapproved, approved_count=approved_count)
    if not unapproved or module.check_mode:
        result["changed"] = bool(unapproved)
        module.exit_json(**result)

    try:
        arguments = package_arguments(before, unapproved)
    except ValueError as exc:
        module.fail_json(msg="Refusing to remove packages: %s" % exc, **result)
    if not module.get_bin_path("apt-get"):
        module.fail_json(msg="apt-get is not on this host: install apt", **result)

    lock_timeout = module.params["lock_timeout"]
    rc, out, err = run(module, apt_command(arguments, purge, True, lock_timeout))
    if rc != 0:
        tail = tail_lines(err or out, ERROR_LINES)
        module.fail_json(
            msg="apt-get could not plan the removal (exit %d): %s"
            % (rc, (tail or ["no output"])[-1]),
            rc=rc,
            error_lines=tail,
            **result,
        )
    refused = sorted(set(simulated_removals(out)) - set(unapproved))
    if refused:
        module.fail_json(
            msg="Refusing to remove the unapproved packages: apt-get would also remove %s; "
            "approve what needs them or remove them by hand" % ", ".join(refused),
            refused=refused,
            **result,
        )

    rc, out, err = run(module, apt_command(arguments, purge, False, lock_timeout))
    after = read_status(module, result)
    removed, changes = removed_changes(before, after)
    result.update(changed=bool(removed), removed=removed, milepost_package_changes=changes)
    if rc != 0:
        tail = tail_lines(err or out, ERROR_LINES)
        module.fail_json(
            msg="apt-get %s failed (exit %d) after %d removals: %s"
            % ("purge" if purge else "remove", rc, len(removed), (tail or ["no output"])[-1]),
            rc=rc,
            error_lines=tail,
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
