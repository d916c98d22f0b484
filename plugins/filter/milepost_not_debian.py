# Milepost: the Debian rules of the playbooks' first checks (milepost.inventory.debian).
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_not_debian
short_description: The items that are not Debian package names (or versions)
description:
  - Takes a list of package names (or of versions) and returns those that break Debian's
    rule, in their order, each once. An item that is not text breaks it too.
  - The rules are those of the milepost package (milepost.inventory.debian), the one source
    the command line, the inventory check and the ledger's readers use.
  - Runs on the controller; needs the milepost package.
positional: _input, what
options:
  _input:
    description: The package names or versions to check.
    type: list
    required: true
  what:
    description: Which rule, C(name) (Debian Policy 5.6.1) or C(version) (Debian Policy 5.6.12).
    type: str
    default: name
    choices: [name, version]
"""

EXAMPLES = r"""
- name: AUDIT | Check the pinned package names
  ansible.builtin.assert:
    that: app_update_versions | default({}) | list | milepost_not_debian | length == 0
"""

RETURN = r"""
_value:
  description: The items that break the rule.
  type: list
"""

from ansible.errors import AnsibleFilterError

try:
    from milepost.inventory.debian import DEBIAN_VERSION, PACKAGE_NAME
except ImportError:  # pragma: no cover - the package is installed with the playbooks
    PACKAGE_NAME = DEBIAN_VERSION = None


def milepost_not_debian(items, what="name"):
    if PACKAGE_NAME is None:
        raise AnsibleFilterError("milepost_not_debian needs the milepost package on the controller")
    rules = {"name": PACKAGE_NAME, "version": DEBIAN_VERSION}
    if what not in rules:
        raise AnsibleFilterError(f"milepost_not_debian: what must be name or version, not {what!r}")
    rule = rules[what]
    bad = []
    for item in items:
        if not (isinstance(item, str) and rule.fullmatch(item)) and item not in bad:
            bad.append(item)
    return bad


class FilterModule:
    def filters(self):
        return {"milepost_not_debian": milepost_not_debian}
