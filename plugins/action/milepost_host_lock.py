"""Action plugin milepost_host_lock: the controller's half of the per-host maintenance lock
(module documentation: plugins/modules/milepost_host_lock.py).

Fills what only the controller knows, without a process per host: ``controller`` (this
machine's name), ``pid`` (the ansible-playbook process, the parent of Ansible's worker) and
``stale_run_ids`` (the runs the ledger records as ended, read once per play:
milepost.patching.play_cache). A lock file other than the standard one is for tests: it is refused
unless the host's milepost_environment is lab, since it would bypass the lock (safety
invariant 4, docs/SAFETY.md).
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ansible.plugins.action import ActionBase

from milepost.patching import play_cache
from milepost.errors import MilepostError
from milepost.inventory.lab_only import STANDARD_LOCK_PATH, lab_only_problem


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        refused = lab_only_problem(
            task_vars.get("milepost_environment"),
            lock_path=args.get("path") or STANDARD_LOCK_PATH,
        )
        if refused:
            return {**result, "failed": True, "msg": refused}
        if str(args.get("state") or "present") == "present":
            args.setdefault("controller", socket.gethostname())
            args.setdefault("pid", os.getppid())
            if "stale_run_ids" not in args:
                try:
                    args["stale_run_ids"] = play_cache.ended_runs()
                except MilepostError as exc:
                    # Without the ledger a stale lock still expires by its time to live.
                    result.setdefault("warnings", []).append(
                        f"cannot read the ended runs in the ledger ({exc}); a stale lock"
                        " is taken over only once it expires"
                    )
        module = self._execute_module(
            module_name="milepost_host_lock", module_args=args, task_vars=task_vars
        )
        warnings = result.get("warnings", []) + module.get("warnings", [])
        if module.get("failed") and str(module.get("msg", "")).startswith("dpkg"):
            module["msg"] = f"{task_vars.get('inventory_hostname')}: {module['msg']}"
        result.update(module)
        if warnings:
            result["warnings"] = warnings
        return result
