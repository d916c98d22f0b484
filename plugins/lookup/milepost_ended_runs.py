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

import json
import subprocess
import sys
from pathlib import Path

from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

display = Display()


def _milepost():
    """The milepost command beside the Python running Ansible (the project's venv)."""
    beside = Path(sys.executable).with_name("milepost")
    return [str(beside)] if beside.exists() else ["milepost"]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        # Lookups run in Ansible's forked worker processes, whose parent has the ledger
        # open for recording. SQLite must not be used across fork(): a forked child that
        # opens and writes the same database can corrupt it. So the ledger is read by a
        # fresh process: `milepost ledger runs`, which first closes runs whose writer is
        # gone.
        argv = [*_milepost(), "ledger", "runs", "--json", "--limit", str(self.get_option("limit"))]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            display.warning(f"milepost_ended_runs: cannot read the ledger ({exc})")
            return [[]]
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            display.warning(f"milepost_ended_runs: cannot read the ledger ({why})")
            return [[]]
        try:
            runs = json.loads(done.stdout)
        except ValueError:
            display.warning("milepost_ended_runs: `milepost ledger runs --json` gave no JSON")
            return [[]]
        return [
            [r["run_id"] for r in runs if r.get("status") in ("successful", "failed", "aborted")]
        ]
