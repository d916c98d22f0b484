# Milepost: the package changes a looped milepost_apt_pin made, and the versions before them.
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_package_changes
short_description: The package changes of a registered task, or the versions before them
description:
  - Takes a registered result (of a looped task, with C(results), or of one task) and
    returns every C(milepost_package_changes) entry it holds, in order.
  - With O(before=true) returns instead C({package - from_version}) of those changes (the
    first change of each package wins), what a rollback restores.
positional: _input, before
options:
  _input:
    description: The registered result.
    type: dict
    required: true
  before:
    description: Return the versions before the changes, not the changes.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: AUDIT | Record the pinned package changes for the health gate
  ansible.builtin.set_fact:
    baseline_package_changes: "{{ __baseline_pins | milepost_package_changes }}"
"""

RETURN = r"""
_value:
  description: The changes ({package, from_version, to_version}), or package to version before.
  type: raw
"""

from ansible.errors import AnsibleFilterError


def milepost_package_changes(registered, before=False):
    if isinstance(registered, list):  # the changes themselves
        changes = list(registered)
    elif isinstance(registered, dict):
        results = registered.get("results")
        parts = results if isinstance(results, list) else [registered]
        changes = [
            change
            for part in parts
            if isinstance(part, dict)
            for change in part.get("milepost_package_changes") or []
        ]
    else:
        raise AnsibleFilterError("milepost_package_changes takes a registered result")
    if not before:
        return changes
    versions = {}
    for change in changes:
        versions.setdefault(change["package"], change.get("from_version"))
    return versions


class FilterModule:
    def filters(self):
        return {"milepost_package_changes": milepost_package_changes}
