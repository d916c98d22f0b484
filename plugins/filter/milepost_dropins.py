# Milepost: the drop-in files a find found, as the drift report's resources.
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_dropins
short_description: Files that ansible.builtin.find found, as drift resources (KIND:PATH)
description:
  - Takes a mapping of resource kind to a registered ansible.builtin.find result and
    returns C(KIND:PATH) for every file found, kind by kind in the mapping's order. A find
    that was skipped (no C(files)) adds nothing.
positional: _input
options:
  _input:
    description: Resource kind (C(sudoers), C(sshd)) to the registered find result.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: AUDIT | List the undeclared drop-ins as resources
  ansible.builtin.set_fact:
    unmanaged: "{{ {'sudoers': __sudoers_found, 'sshd': __sshd_found} | milepost_dropins }}"
"""

RETURN = r"""
_value:
  description: C(KIND:PATH) of every file found.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def milepost_dropins(found_by_kind):
    if not isinstance(found_by_kind, dict):
        raise AnsibleFilterError("milepost_dropins takes a mapping of kind to a find result")
    return [
        f"{kind}:{found['path']}"
        for kind, result in found_by_kind.items()
        for found in (result or {}).get("files") or []
    ]


class FilterModule:
    def filters(self):
        return {"milepost_dropins": milepost_dropins}
