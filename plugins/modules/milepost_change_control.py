#!/usr/bin/python
"""Documentation of the milepost_change_control action
(plugins/action/milepost_change_control.py).

The action runs on the controller; this file only documents it, as Ansible's own action
plugins (for example ansible.builtin.debug) are documented.
"""

DOCUMENTATION = r"""
---
module: milepost_change_control
short_description: Fail a host that needs approvals unless the run has an approved plan
description:
  - The change-control gate (milepost.change_control.gate) for a changing play that does
    not probe its hosts (the preflight role's probe applies the same gate). A host whose
    group asks for approvals (C(milepost_change_control.approvals)) fails, untouched,
    unless O(plan) names an approved change plan that holds it, verified from the ledger
    and the allowed-signers file.
  - Runs on the controller only. Check mode passes (nothing changes).
options:
  rules:
    description: The host's C(milepost_change_control).
    type: dict
  plan:
    description: The run's C(milepost_plan) (set by C(milepost apply)), or null.
    type: dict
  allowed_signers:
    description: The allowed-signers file (relative to O(inventory_dir)).
    type: str
    default: ""
  inventory_dir:
    description: The inventory's directory.
    type: str
    default: ""
  action:
    description: The kind of plan this play applies (a plan of another kind is refused).
    type: str
    default: maintain
    choices: [maintain, remediate]
  resources:
    description:
      - With O(action=remediate), the resources the run corrects on the host (its
        C(baseline_only)); they must be exactly the plan's for the host.
    type: list
    elements: str
  how:
    description: What the refusal tells the operator to do instead.
    type: str
    default: ""
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
"""

EXAMPLES = r"""
- name: AUDIT | Check change control on the controller before the host is changed
  milepost_change_control:
    rules: "{{ milepost_change_control | default(none) }}"
    plan: "{{ milepost_plan | default(none) }}"
    allowed_signers: "{{ preflight_allowed_signers }}"
    inventory_dir: "{{ inventory_dir | default('') }}"
"""

RETURN = r"""
change_control:
  description: Why the host may be changed by this run (one line).
  returned: success
  type: str
"""
