# Milepost: the rolling batches of a play (safety invariant 2, docs/SAFETY.md).
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_batches
short_description: A canary, then batches in which no group loses more than it allows
description:
  - Takes the hosts of a play (in order) and returns the list of batches to play them in
    the first holding the canary, each later one as large as O(serial) allows, but never
    with more than C(milepost_max_unavailable) hosts (default 1) of one group.
  - Groups C(all), C(ungrouped) and C(ruc) are not redundancy groups.
  - Play the hosts in the order of the flattened result with C(serial) set to the batch
    sizes (see playbooks/maintain.yml).
  - Runs on the controller; needs the milepost package (milepost.inventory.batches).
positional: _input, hostvars
options:
  _input:
    description: The hosts, in play order.
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars), for each host's C(group_names) and C(milepost_max_unavailable).
    type: dict
    required: true
  serial:
    description: The most hosts each batch may hold, a count or a percentage; the last repeats.
    type: list
    default: [1, '50%']
"""

EXAMPLES = r"""
- name: AUDIT | Plan the batches of this run
  ansible.builtin.set_fact:
    milepost_batch_plan: "{{ ansible_play_hosts | milepost_batches(hostvars, serial=[1, '50%']) }}"
"""

RETURN = r"""
_value:
  description: The batches, each a list of host names.
  type: list
  elements: list
"""

from ansible.errors import AnsibleFilterError

try:
    from milepost.inventory.batches import plan
    from milepost.errors import MilepostError
except ImportError:  # pragma: no cover - the package is installed with the playbooks
    plan = None


def milepost_batches(hosts, hostvars, serial=(1, "50%")):
    if plan is None:
        raise AnsibleFilterError("milepost_batches needs the milepost package on the controller")
    hosts = [str(host) for host in hosts]
    groups_of = {host: list(hostvars[host].get("group_names") or []) for host in hosts}
    limits = {host: hostvars[host].get("milepost_max_unavailable") for host in hosts}
    try:
        return plan(hosts, groups_of, limits, list(serial))
    except MilepostError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"milepost_batches": milepost_batches}
