#!/usr/bin/python
"""Documentation of the milepost_drift_report action (plugins/action/milepost_drift_report.py).

The action runs on the controller; this file only documents it, as Ansible's own action
plugins (for example ansible.builtin.debug) are documented.
"""

DOCUMENTATION = r"""
---
module: milepost_drift_report
short_description: Report how a host differs from its baseline (the baseline role's last task)
description:
  - Turns the registered per-item results of the baseline role's converge tasks, and its
    read-only probes (effective sshd settings, installed packages, service states), into
    one drift report per host, under the result key C(milepost_drift).
  - In check mode an item that would change is drift; in a converge run it is a
    correction. Probe findings (sshd settings that differ in effect, pinned packages at
    another version, packages that are not approved) are added in check mode.
  - Entries are merged by resource name (C(file:/etc/ruc/x.conf), C(service:x),
    C(package:x), C(sysctl:k), C(user:u), C(sudoers:/path), C(sshd:Setting), C(sshd:/path));
    diffs are unified (actual to baseline), redacted and cut to 4000 characters.
  - The maintenance_ledger callback records C(milepost_drift) as a drift_check record.
  - Runs on the controller only and never changes anything.
version_added: "0.1.0"
author:
  - Milepost operations
options:
  mode:
    description: C(check) (drift detection) or C(converge) (what was corrected).
    type: str
    required: true
    choices: [check, converge]
  group:
    description: The host's group (function), recorded with the report.
    type: str
    default: ""
  vendor:
    description: The vendor operating the host, recorded with the report.
    type: str
    default: ""
  redact:
    description:
      - Regular expressions; matching text in diffs, expected and actual values is
        replaced by C(***). Secret-looking C(key=value) text is always masked.
    type: list
    elements: str
    default: []
  items:
    description:
      - Groups of C(resources) (resource names) and C(results) (the registered per-item
        results of the loop over them, index for index).
    type: list
    elements: dict
    default: []
  unmanaged_content:
    description: Registered slurp results of undeclared drop-ins (their content goes in the diff).
    type: list
    elements: dict
    default: []
  sshd_expected:
    description: Expected sshd settings (Setting -> value).
    type: dict
    default: {}
  sshd_effective:
    description: Output of C(sshd -T).
    type: str
    default: ""
  package_pins:
    description: Pinned packages (name -> version).
    type: dict
    default: {}
  packages:
    description: C(ansible_facts.packages) of the host.
    type: dict
    default: {}
  unapproved:
    description: Installed packages that are not approved (check mode findings).
    type: list
    elements: str
    default: []
  removed:
    description: Packages removed as not approved (converge mode corrections).
    type: list
    elements: str
    default: []
  services_expected:
    description: The baseline's services.
    type: list
    elements: dict
    default: []
  services:
    description: C(ansible_facts.services) of the host (for the actual state).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Use the baseline role rather than this action directly.
"""

EXAMPLES = r"""
- name: AUDIT | Report how this host differs from its baseline
  milepost_drift_report:
    mode: "{{ 'check' if ansible_check_mode else 'converge' }}"
    items:
      - resources: ["file:/etc/ruc/ruc-account-api.conf"]
        results: "{{ __baseline_contents.results }}"
"""

RETURN = r"""
milepost_drift:
  description: The host's drift report.
  returned: success
  type: dict
  contains:
    mode:
      description: check or converge.
      type: str
    group:
      description: The host's group.
      type: str
    vendor:
      description: The host's vendor.
      type: str
    resources:
      description: How many resources were checked.
      type: int
    drifted:
      description: One entry per resource that differs (check) or was corrected (converge).
      type: list
      elements: dict
      contains:
        resource:
          description: The resource name, such as C(file:/etc/ruc/ruc-account-api.conf).
          type: str
        expected:
          description: What the baseline wants, in a few words.
          type: str
        actual:
          description: What the host has, in a few words.
          type: str
        diff:
          description: Unified diff from actual to baseline, redacted; may be empty.
          type: str
"""
