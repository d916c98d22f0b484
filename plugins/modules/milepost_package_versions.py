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

from ansible.module_utils.basic import AnsibleModule  # noqa: E402 - docs come first
from ansible.module_utils.milepost_apt import apt, apt_pkg, require_apt  # noqa: E402

# The report's rules are shared with milepost_probe (plugins/module_utils/milepost_packages.py).
from ansible.module_utils.milepost_packages import (  # noqa: E402, F401
    build_report,
    dpkg_version_compare,
    is_glob,
    match_names,
    package_entry,
    read_apt_records,
    sort_versions,
)


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
