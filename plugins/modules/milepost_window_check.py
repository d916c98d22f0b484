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
    B(Controller only.) Unlike Milepost's other modules this one is not self-contained:
    it imports C(milepost.windows) (and through it C(croniter)) from the controller's
    Python. Run it with C(delegate_to: localhost), C(become: false) and
    C(ansible_python_interpreter) set to C(ansible_playbook_python), as the
    C(preflight) role does. When the package is not importable from the interpreter the
    module also tries the directory named by the environment variable C(MILEPOST_ROOT).
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
      - The instant to check, as an ISO 8601 date-time with an offset (for tests).
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
  delegate_to: localhost
  become: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  register: __preflight_window

- name: AUDIT | Proceed outside the window with a recorded reason
  milepost_window_check:
    window: "{{ milepost_window }}"
    blackouts: "{{ milepost_blackouts | default([]) }}"
    group: ruc_payment
    override: true
    override_reason: "CVE-2025-0001 is on the KEV list; CAB approved change 4711"
  delegate_to: localhost
  become: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
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

import os  # noqa: E402 - Ansible modules put the docs first
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

IMPORT_ERROR = None
try:
    try:
        from milepost.errors import UserError
        from milepost.windows import parse_blackouts, parse_window, window_state
    except ImportError:
        _root = os.environ.get("MILEPOST_ROOT")
        if not _root:
            raise
        sys.path.insert(0, _root)
        from milepost.errors import UserError
        from milepost.windows import parse_blackouts, parse_window, window_state
except ImportError as exc:
    IMPORT_ERROR = str(exc)


def parse_now(text):
    """Parse an ISO 8601 date-time; naive values are UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def decide(params, now):
    """Return (failed, result) for the module parameters at the aware datetime now.

    Raises UserError for a malformed window, blackout list or override.
    """
    group = params["group"] or "this host"
    raw_window = params["window"] or {}
    window = parse_window(raw_window, group=group) if raw_window else None
    blackouts = parse_blackouts(params["blackouts"] or [], group=group)
    is_open, reason, next_open = window_state(window, blackouts, now)
    next_text = next_open.isoformat() if next_open is not None else None
    result = {
        "changed": False,
        "open": is_open,
        "reason": reason,
        "next_open": next_text,
        "overridden": False,
        "configured": window is not None,
        "group": group,
    }
    if is_open:
        return False, result

    override_reason = (params["override_reason"] or "").strip()
    if params["override"]:
        if not override_reason:
            raise UserError(
                "override of the maintenance window of %s needs a non-empty reason "
                "(override_reason / --reason TEXT)" % group
            )
        result["overridden"] = True
        result["reason"] = "window overridden (%s): %s" % (reason, override_reason)
        result["milepost_window_override"] = {
            "reason": override_reason,
            "group": group,
            "next_open": next_text,
        }
        return False, result

    when = next_text if next_text is not None else "not within 400 days (%s)" % reason
    result["msg"] = "outside the maintenance window of %s: next window opens %s" % (group, when)
    if next_text is not None and "blackout" in reason:
        result["msg"] += " (%s)" % reason.split(";")[0]
    return True, result


def main():
    module = AnsibleModule(
        argument_spec={
            "window": {"type": "dict", "default": {}},
            "blackouts": {"type": "list", "elements": "raw", "default": []},
            "group": {"type": "str", "default": "this host"},
            "now": {"type": "str"},
            "override": {"type": "bool", "default": False},
            "override_reason": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    if IMPORT_ERROR is not None:
        module.fail_json(
            msg="milepost_window_check runs on the controller and needs the milepost package "
            "and croniter (%s); run it with delegate_to: localhost and "
            "ansible_python_interpreter: '{{ ansible_playbook_python }}', or set MILEPOST_ROOT"
            % IMPORT_ERROR
        )

    try:
        now = parse_now(module.params["now"]) if module.params["now"] else None
    except ValueError:
        module.fail_json(msg="now %r is not an ISO 8601 date-time" % module.params["now"])
    if now is None:
        now = datetime.now(timezone.utc)

    try:
        failed, result = decide(module.params, now)
    except UserError as exc:
        module.fail_json(msg=str(exc))
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
