#!/usr/bin/python
"""Documentation of the milepost_kill_switch action (plugins/action/milepost_kill_switch.py).

The action runs on the controller; this file only documents it, as Ansible's own action
plugins (for example ansible.builtin.debug) are documented.
"""

DOCUMENTATION = r"""
---
module: milepost_kill_switch
short_description: Fail the batch when the Milepost kill switch is set
description:
  - Reads the newest C(kill_switch) record of the maintenance ledger and the local kill
    switch file; when either is set, fails every host of the batch, untouched, saying
    why and who set it. Returns C(milepost_batch) (the batch's number in O(plan) and its
    hosts), which the maintenance_ledger callback records as a C(batch_started) record.
  - Runs on the controller only.
options:
  file:
    description: The local kill switch file (C(milepost stop) writes it).
    type: path
    required: true
  batch:
    description: The hosts of this batch (C(ansible_play_batch)).
    type: list
    elements: str
    default: []
  plan:
    description: The run's batches (filter milepost_batches), for the batch's number.
    type: list
    elements: list
    default: []
  play:
    description: The play's name, for the ledger.
    type: str
    default: ""
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
    details: Reads only; runs in check mode too, so a dry run stops where the run would.
"""

EXAMPLES = r"""
- name: AUDIT | Refuse to start this batch while the kill switch is set
  milepost_kill_switch:
    file: /srv/milepost/.milepost/stop
    batch: "{{ ansible_play_batch }}"
  run_once: true
"""

RETURN = r"""
milepost_batch:
  description: The batch's play, number (null without a plan) and hosts.
  returned: always
  type: dict
"""
