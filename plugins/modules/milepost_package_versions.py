#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_package_versions
short_description: Report installed, candidate and known versions of APT packages
version_added: "0.1.0"
description:
  - Reads the APT cache of the managed host with python3-apt and reports, for every
    known package whose name matches one of O(names), the installed version, the
    candidate version APT would install, every version APT knows about (newest first)
    and whether the installed version is older than the candidate.
  - The module only reads the APT cache; it never refreshes it and never changes
    the host. Refresh the cache first (for example with M(ansible.builtin.apt) and
    O(ansible.builtin.apt#module:update_cache=true)) to compare against the latest
    repository metadata.
  - A package is "known" when APT has at least one version of it, from a repository
    or from the dpkg status file. Purely virtual packages are not reported.
options:
  names:
    description:
      - Package names or shell-style globs (C(fnmatch)) such as C(ruc-*).
      - Matching is case-sensitive and done against the package name without the
        architecture suffix for the native architecture.
    type: list
    elements: str
    required: true
requirements:
  - python3-apt on the managed host (the module re-runs itself under a system
    Python that has it when the discovered interpreter does not)
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
notes:
  - The module never reports C(changed).
seealso:
  - module: ansible.builtin.package_facts
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: AUDIT | Read the versions of every RUC package
  milepost_package_versions:
    names:
      - "ruc-*"
  register: __package_status_versions

- name: AUDIT | Read the versions of two named packages
  milepost_package_versions:
    names:
      - ruc-account-api
      - openssl
  register: __example_versions

- name: AUDIT | Show the RUC packages that have a newer candidate
  ansible.builtin.debug:
    msg: "{{ __package_status_versions.packages | dict2items
             | selectattr('value.outdated') | map(attribute='key') | list }}"
"""

RETURN = r"""
packages:
  description:
    - One entry per known package whose name matches O(names), keyed by package name.
  returned: always
  type: dict
  contains:
    installed:
      description: The installed version, or V(null) when the package is not installed.
      type: str
      sample: 1.4.0
    candidate:
      description:
        - The version APT would install (after pinning), or V(null) when there is none.
      type: str
      sample: 1.5.0
    versions:
      description: Every version APT knows about, newest first, without duplicates.
      type: list
      elements: str
      sample: ["1.5.0", "1.4.0"]
    outdated:
      description:
        - V(true) when the package is installed and the candidate is newer than the
          installed version.
      type: bool
      sample: true
  sample:
    ruc-account-api:
      installed: 1.4.0
      candidate: 1.5.0
      versions: ["1.5.0", "1.4.0"]
      outdated: true
unmatched:
  description: The entries of O(names) that matched no known package.
  returned: always
  type: list
  elements: str
  sample: ["ruc-retired-*"]
"""

import fnmatch  # noqa: E402 - Ansible modules put the docs first

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.milepost_apt import apt, apt_pkg, require_apt  # noqa: E402

GLOB_CHARACTERS = frozenset("*?[")


# ---------------------------------------------------------------------------
# Pure logic (unit tested without python3-apt)
# ---------------------------------------------------------------------------


def is_glob(pattern):
    """Return True when pattern uses fnmatch wildcards."""
    return any(char in GLOB_CHARACTERS for char in pattern)


def match_names(patterns, known_names):
    """Return (sorted matching names, unmatched patterns).

    Plain names match only themselves; globs are matched with fnmatchcase.
    """
    known = sorted(set(known_names))
    known_set = set(known)
    matched = set()
    unmatched = []
    for pattern in patterns:
        if is_glob(pattern):
            hits = [name for name in known if fnmatch.fnmatchcase(name, pattern)]
        else:
            hits = [pattern] if pattern in known_set else []
        if hits:
            matched.update(hits)
        elif pattern not in unmatched:
            unmatched.append(pattern)
    return sorted(matched), unmatched


def _order(char):
    """Weight of one character in the non-digit part of a Debian version."""
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(left, right):
    """Compare two upstream-version or revision strings the way dpkg does."""
    i = j = 0
    while i < len(left) or j < len(right):
        first_diff = 0
        while (i < len(left) and not left[i].isdigit()) or (
            j < len(right) and not right[j].isdigit()
        ):
            left_order = _order(left[i]) if i < len(left) else 0
            right_order = _order(right[j]) if j < len(right) else 0
            if left_order != right_order:
                return left_order - right_order
            i += 1
            j += 1
        while i < len(left) and left[i] == "0":
            i += 1
        while j < len(right) and right[j] == "0":
            j += 1
        while i < len(left) and left[i].isdigit() and j < len(right) and right[j].isdigit():
            if not first_diff:
                first_diff = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < len(left) and left[i].isdigit():
            return 1
        if j < len(right) and right[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version):
    """Split a Debian version into (epoch, upstream, revision)."""
    epoch = 0
    rest = version
    if ":" in version:
        head, rest = version.split(":", 1)
        # isascii: str.isdigit() also accepts digits int() cannot read ("\u00b2"); an
        # epoch longer than 18 digits is not one dpkg would take.
        epoch = int(head) if head.isascii() and head.isdigit() and len(head) <= 18 else 0
    if "-" in rest:
        upstream, revision = rest.rsplit("-", 1)
    else:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def dpkg_version_compare(left, right):
    """Compare two Debian versions: negative, zero or positive like apt_pkg.version_compare."""
    left_epoch, left_upstream, left_revision = _split_version(left)
    right_epoch, right_upstream, right_revision = _split_version(right)
    if left_epoch != right_epoch:
        return left_epoch - right_epoch
    result = _verrevcmp(left_upstream, right_upstream)
    if result:
        return result
    return _verrevcmp(left_revision, right_revision)


def sort_versions(versions, compare):
    """Return versions without duplicates, newest first, using compare(a, b)."""
    unique = []
    for version in versions:
        if version and version not in unique:
            unique.append(version)
    # Insertion sort: the lists are short and compare is not a key function.
    ordered = []
    for version in unique:
        position = 0
        while position < len(ordered) and compare(ordered[position], version) >= 0:
            position += 1
        ordered.insert(position, version)
    return ordered


def package_entry(installed, candidate, versions, compare):
    """Build the report entry of one package."""
    outdated = bool(
        installed is not None and candidate is not None and compare(candidate, installed) > 0
    )
    return {
        "installed": installed,
        "candidate": candidate,
        "versions": sort_versions(versions, compare),
        "outdated": outdated,
    }


def build_report(patterns, records, compare):
    """Build the module result from plain package records.

    records maps a package name to a dict with keys installed, candidate and versions
    (strings, None for missing). Returns (packages, unmatched).
    """
    names, unmatched = match_names(patterns, records.keys())
    packages = {}
    for name in names:
        record = records[name]
        packages[name] = package_entry(
            record.get("installed"),
            record.get("candidate"),
            record.get("versions") or [],
            compare,
        )
    return packages, unmatched


# ---------------------------------------------------------------------------
# python3-apt access
# ---------------------------------------------------------------------------


def read_apt_records(cache, patterns):
    """Return {name: {installed, candidate, versions}} for the packages patterns can match."""
    if any(is_glob(pattern) for pattern in patterns):
        names = list(cache.keys())
    else:
        names = [pattern for pattern in patterns if pattern in cache]
    records = {}
    for name in names:
        package = cache[name]
        versions = [version.version for version in package.versions]
        if not versions:
            continue
        installed = package.installed
        candidate = package.candidate
        records[name] = {
            "installed": installed.version if installed is not None else None,
            "candidate": candidate.version if candidate is not None else None,
            "versions": versions,
        }
    return records


def main():
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )

    require_apt(module)

    patterns = [name.strip() for name in module.params["names"] if name and name.strip()]
    if not patterns:
        module.fail_json(msg="names must hold at least one package name or glob")

    try:
        cache = apt.Cache(memonly=True)
    except Exception as exc:  # noqa: BLE001 - python3-apt raises plain SystemError/OSError
        module.fail_json(msg="Could not open the APT cache: %s" % exc)

    packages, unmatched = build_report(
        patterns, read_apt_records(cache, patterns), apt_pkg.version_compare
    )
    module.exit_json(changed=False, packages=packages, unmatched=unmatched)


if __name__ == "__main__":
    main()
