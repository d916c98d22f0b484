# Milepost: which packages of an advisory a host must patch.
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_exposed
short_description: Packages of an advisory installed at a version older than the fix
description:
  - Takes the advisory's packages and fixed versions (a mapping of package name to fixed
    version) and the host's package facts (C(ansible_facts.packages), as
    ansible.builtin.package_facts gathers them) and returns the same kind of mapping for
    every package that is installed and older than its fixed version, in Debian version
    ordering (python-debian).
  - A package whose fixed version is null is returned as exposed (no fix is known); the
    emergency patch refuses such advisories before any host is touched.
  - Runs on the controller; needs the milepost package (milepost.patching.exposure).
positional: _input, packages
options:
  _input:
    description: The advisory's packages and fixed versions.
    type: dict
    required: true
  packages:
    description: The host's package facts (ansible_facts.packages).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: AUDIT | Work out which packages this host must patch
  ansible.builtin.set_fact:
    targets: "{{ {'ruc-payment-gateway': '2.4.0'} | milepost_exposed(ansible_facts.packages) }}"
"""

RETURN = r"""
_value:
  description: The exposed packages and their fixed versions.
  type: dict
"""

from ansible.errors import AnsibleFilterError


def milepost_exposed(fixed_versions, packages):
    try:
        from milepost.patching.exposure import exposed_packages
    except ImportError as exc:
        raise AnsibleFilterError(f"milepost_exposed needs the milepost package: {exc}") from exc
    if not isinstance(fixed_versions, dict) or not isinstance(packages, dict):
        raise AnsibleFilterError(
            "milepost_exposed takes two mappings: fixed versions, package facts"
        )
    installed = {
        str(name): str(found[0].get("version"))
        for name, found in packages.items()
        if isinstance(found, list) and found and found[0].get("version")
    }
    fixed = {str(k): (None if v is None else str(v)) for k, v in fixed_versions.items()}
    return exposed_packages(fixed, installed)


class FilterModule:
    def filters(self):
        return {"milepost_exposed": milepost_exposed}
