"""Action plugin milepost_window_check: is now inside the maintenance window of a host's
group? Decided in the controller's Ansible process (milepost.inventory.windows.window_result): no
module runs, on the host or on the controller. Documentation:
plugins/modules/milepost_window_check.py.

The clock may be moved (``now``) only against the lab inventory (milepost_environment:
lab): anywhere else it would bypass the window (safety invariant 4, docs/SAFETY.md).
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from milepost.inventory.windows import window_result

ARGS = ("window", "blackouts", "group", "now", "override", "override_reason")


class ActionModule(ActionBase):
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        unknown = sorted(set(args) - set(ARGS))
        if unknown:
            return {**result, "failed": True, "msg": f"unknown arguments: {', '.join(unknown)}"}
        result.update(window_result(args, task_vars.get("milepost_environment")))
        return result
