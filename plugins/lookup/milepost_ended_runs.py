# Milepost: run ids the maintenance ledger knows have ended.
from __future__ import annotations

DOCUMENTATION = r"""
name: milepost_ended_runs
short_description: Ids of the runs the Milepost ledger records as ended
description:
  - Returns one list, the ids of recent runs whose end (successful, failed or aborted) is
    in the maintenance ledger. Runs whose writer is gone are closed as aborted first.
  - Per-host maintenance locks held by these runs are stale and may be taken over.
  - If the ledger cannot be read, returns an empty list with a warning (locks then expire
    by their time to live).
options:
  limit:
    description: How many of the newest runs to look at.
    type: int
    default: 500
"""

EXAMPLES = r"""
- name: Take over locks left by runs that have ended
  ansible.builtin.set_fact:
    preflight_lock_stale_run_ids: "{{ lookup('milepost_ended_runs') }}"
"""

RETURN = r"""
_raw:
  description: One list of run ids.
  type: list
  elements: list
"""

from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

display = Display()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            from milepost.errors import MilepostError
            from milepost.ledger import Ledger
        except ImportError:
            display.warning("milepost_ended_runs: the milepost package is not installed")
            return [[]]
        try:
            ledger = Ledger.open()
            ledger.close_stale_runs()
            runs = ledger.runs(limit=self.get_option("limit"))
        except (MilepostError, OSError) as exc:
            display.warning(f"milepost_ended_runs: cannot read the ledger ({exc})")
            return [[]]
        return [
            [r["run_id"] for r in runs if r.get("status") in ("successful", "failed", "aborted")]
        ]
