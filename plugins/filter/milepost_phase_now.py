# Milepost: the program's phase today (milepost.inventory.phase, the one rule).
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_phase_now
short_description: The phase a milepost_phase value puts in force today
description:
  - Takes a C(milepost_phase) value, a name (V(normal), V(hypercare)) or a mapping
    C({name, launch, end}) of dates YYYY-MM-DD, and returns V(normal) or V(hypercare) on
    today's day (UTC), or on O(now)'s day.
  - Hypercare with dates holds from its launch day to its end day, both included, and ends
    on its own after the end day. The rule is milepost.inventory.phase.phase_at, the one
    the command line, the ledger callback and the daily review use.
  - A malformed value (an unknown name, an end before the launch) fails the task.
  - Runs on the controller; needs the milepost package.
positional: _input
options:
  _input:
    description: The milepost_phase value.
    type: raw
    required: true
  now:
    description: The day taken as today (YYYY-MM-DD; tests); default today, UTC.
    type: str
"""

EXAMPLES = r"""
- name: AUDIT | Check this batch with the QC catalogue (hypercare)
  ansible.builtin.include_tasks: tasks/qc.yml
  when: (milepost_phase | default('normal') | milepost_phase_now) == 'hypercare'
"""

RETURN = r"""
_value:
  description: V(normal) or V(hypercare).
  type: str
"""

from datetime import date

from ansible.errors import AnsibleFilterError

try:
    from milepost.errors import UserError
    from milepost.inventory.phase import phase_at
except ImportError:  # pragma: no cover - the package is installed with the playbooks
    phase_at = None


def milepost_phase_now(value, now=None):
    if phase_at is None:
        raise AnsibleFilterError("milepost_phase_now needs the milepost package on the controller")
    try:
        day = date.fromisoformat(str(now)) if now is not None else None
        return phase_at(value, day)
    except (UserError, ValueError) as bad:
        raise AnsibleFilterError(str(bad)) from None


class FilterModule:
    def filters(self):
        return {"milepost_phase_now": milepost_phase_now}
