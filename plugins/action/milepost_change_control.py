"""Action plugin milepost_change_control: the change-control gate of a changing play that
does not probe its hosts (playbooks/remediate.yml), on the controller, before the host is
touched (module documentation: plugins/modules/milepost_change_control.py). The rule is
milepost.change_control.gate's, as the probe's (plugins/action/milepost_probe.py) applies
it in preflight. Check mode passes: nothing is changed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansible.plugins.action import ActionBase

from milepost.change_control.gate import check_task
from milepost.errors import MilepostError


class ActionModule(ActionBase):
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result["changed"] = False
        if self._play_context.check_mode:
            result["change_control"] = "dry run: nothing is changed"
            return result
        host = str(task_vars.get("inventory_hostname"))
        try:
            result["change_control"] = check_task(host, self._task.args, datetime.now(UTC))
        except MilepostError as exc:
            result.update(failed=True, msg=f"{exc}; nothing is changed on it")
        return result
