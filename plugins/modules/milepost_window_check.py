#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Milepost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: milepost_window_check
short_description: Check that now is inside a host group's maintenance window
version_added: "0.1.0"
description:
  - Decides whether a regular maintenance run may proceed now, from a maintenance window
    (a cron expression whose fire times open it, a duration, an IANA time zone) and
    blackout dates (billing and settlement cycles) read in that time zone.
  - Inside the window and not on a blackout date, the module returns RV(open=true).
  - >-
    Otherwise it fails with one line,
    C(outside the maintenance window of <group>: next window opens <time>), unless
    O(override=true) with a non-empty O(override_reason); then it succeeds with
    RV(overridden=true) and returns RV(milepost_window_override) so the maintenance
    ledger records why.
  - With no window (O(window) empty or omitted) the check passes and says so; blackout
    dates still apply, read in UTC.
  - >-
    B(Controller only.) An action: it decides in the controller's Ansible process with
    C(milepost.inventory.windows), runs no module and never connects to the host (the action
    plugin is plugins/action/milepost_window_check.py; this file documents it).
  - O(now) moves the clock for tests and is refused unless the host's
    C(milepost_environment) is C(lab) (safety invariant 4, docs/SAFETY.md).
options:
  window:
    description:
      - The maintenance window, usually C(milepost_window) from inventory group_vars.
      - Keys C(cron) (five-field cron expression or an alias such as C(@daily)),
        C(duration_minutes) (1 to 10080) and C(timezone) (IANA name).
      - Empty or omitted means no window is configured.
    type: dict
    default: {}
  blackouts:
    description:
      - Blackout dates, usually C(milepost_blackouts) from inventory group_vars.
      - Each entry is an ISO date (C(2025-01-31)) or a mapping with C(start) and C(end)
        ISO dates (inclusive), read in the window's time zone.
    type: list
    elements: raw
    default: []
  group:
    description: The name of the window (usually the inventory group), used in messages.
    type: str
    default: this host
  now:
    description:
      - The instant to check, as an ISO 8601 date-time with an offset (for tests, lab only).
      - A date-time without an offset is read as UTC. Defaults to the current time.
    type: str
  override:
    description: Proceed outside the window (or on a blackout date). Needs O(override_reason).
    type: bool
    default: false
  override_reason:
    description:
      - Why the window is overridden; recorded in the ledger. Required with O(override=true).
    type: str
    default: ""
requirements:
  - the C(milepost) package and C(croniter) in the controller's Python
author:
  - Milepost contributors
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The module never reports C(changed); it behaves the same in check mode.
  - A malformed window or blackout date fails with a one-line message naming the group
    and what is wrong.
seealso:
  - module: milepost_host_lock
"""

EXAMPLES = r"""
- name: AUDIT | Check the maintenance window of this host's group
  milepost_window_check:
    window:
      cron: "0 1 * * 0"
      duration_minutes: 240
      timezone: America/Los_Angeles
    blackouts:
      - 2025-01-31
      - start: 2025-03-28
        end: 2025-04-02
    group: ruc_payment
  register: __preflight_window

- name: AUDIT | Proceed outside the window with a recorded reason
  milepost_window_check:
    window: "{{ milepost_window }}"
    blackouts: "{{ milepost_blackouts | default([]) }}"
    group: ruc_payment
    override: true
    override_reason: "CVE-2025-0001 is on the KEV list; CAB approved change 4711"
"""

RETURN = r"""
open:
  description: Whether the window is open now (not counting an override).
  returned: always
  type: bool
  sample: false
reason:
  description: One line explaining the decision.
  returned: always
  type: str
  sample: "outside the window; next window opens 2025-06-08T01:00-07:00"
next_open:
  description:
    - When the window next opens (ISO 8601, in the window's time zone), or V(null) when it
      is open now or does not open within 400 days.
  returned: always
  type: str
  sample: "2025-06-08T01:00:00-07:00"
overridden:
  description: V(true) when the window was closed and O(override) let the run proceed.
  returned: always
  type: bool
  sample: false
configured:
  description: V(false) when no window is configured for the group.
  returned: always
  type: bool
  sample: true
group:
  description: The window's name, as given in O(group).
  returned: always
  type: str
  sample: ruc_payment
milepost_window_override:
  description:
    - Present only when RV(overridden=true); the maintenance ledger records it.
  returned: when overridden
  type: dict
  contains:
    reason:
      description: O(override_reason).
      type: str
    group:
      description: O(group).
      type: str
    next_open:
      description: RV(next_open).
      type: str
  sample:
    reason: "CVE-2025-0001 is on the KEV list; CAB approved change 4711"
    group: ruc_payment
    next_open: "2025-06-08T01:00:00-07:00"
"""
