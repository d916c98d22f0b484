# Milepost: the hosts in hypercare today (milepost.inventory.phase, the one rule).
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_hypercare_hosts
short_description: The hosts whose milepost_phase puts them in hypercare today
description:
  - Takes a list of host names and returns, in their order, those whose C(milepost_phase)
    (a name, or a mapping C({name, launch, end}) of dates) puts them in hypercare today
    (UTC). The rule is milepost.inventory.phase.phase_at (see the milepost_phase_now filter).
  - A malformed milepost_phase fails the task, naming the host.
  - Runs on the controller; needs the milepost package.
positional: _input, hostvars
options:
  _input:
    description: The host names.
    type: list
    elements: str
    required: true
  hostvars:
    description: The play's C(hostvars).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: AUDIT | Note the hosts in hypercare
  ansible.builtin.set_fact:
    milepost_hypercare_hosts: "{{ ansible_play_hosts | milepost_hypercare_hosts(hostvars) }}"
"""

RETURN = r"""
_value:
  description: The hosts in hypercare today.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

try:
    from milepost.errors import UserError
    from milepost.inventory.phase import HYPERCARE, PHASE_VAR, phase_at
except ImportError:  # pragma: no cover - the package is installed with the playbooks
    phase_at = None


def milepost_hypercare_hosts(hosts, hostvars):
    if phase_at is None:
        raise AnsibleFilterError(
            "milepost_hypercare_hosts needs the milepost package on the controller"
        )
    found = []
    for host in hosts:
        own = hostvars[host]
        value = own[PHASE_VAR] if PHASE_VAR in own else None
        try:
            if phase_at(value, None, f"{PHASE_VAR} of {host}") == HYPERCARE:
                found.append(host)
        except UserError as bad:
            raise AnsibleFilterError(str(bad)) from None
    return found


class FilterModule:
    def filters(self):
        return {"milepost_hypercare_hosts": milepost_hypercare_hosts}
