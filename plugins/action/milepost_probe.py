"""Action plugin milepost_probe: the controller's half of the probe of a host (module
documentation: plugins/modules/milepost_probe.py).

1. ``window_check`` (the arguments of milepost_window_check) is decided here, on the
   controller, before the host is asked anything: a closed window fails the host untouched,
   and so does a test-only value (the window's clock, another lock file) outside the lab.
   So does ``change_control`` (milepost.change_control.gate): a host whose group asks for
   approvals is changed only by a run applying an approved change plan, checked here again
   from the ledger and the allowed-signers file.
2. The read-only probe module runs on the host.
3. Its result is checked (milepost.patching.probe.check): one the controller cannot read fails the
   host with one line, never counting as "nothing to do"; so does a filesystem with less
   than ``min_free_mb`` MiB free.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansible.plugins.action import ActionBase

from milepost.change_control.gate import check_task
from milepost.errors import MilepostError
from milepost.inventory.lab_only import lab_only_problem
from milepost.patching.probe import check, free_space_problem
from milepost.inventory.windows import window_result

CONTROLLER_ARGS = ("window_check", "min_free_mb", "change_control")


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        host = str(task_vars.get("inventory_hostname"))
        args = {k: v for k, v in self._task.args.items() if k not in CONTROLLER_ARGS}
        window_args = self._task.args.get("window_check")
        refused = lab_only_problem(
            task_vars.get("milepost_environment"),
            now=(window_args or {}).get("now") if isinstance(window_args, dict) else None,
            lock_path=args.get("lock_path"),
        )
        if refused:
            return {**result, "failed": True, "msg": refused}
        control = self._task.args.get("change_control")
        if isinstance(control, dict) and not self._play_context.check_mode:
            try:
                result["change_control"] = check_task(host, control, datetime.now(UTC))
            except MilepostError as exc:
                return {**result, "failed": True, "msg": f"{exc}; nothing is changed on it"}
        if window_args is not None:
            if not isinstance(window_args, dict):
                return {**result, "failed": True, "msg": "window_check must be a mapping"}
            window = window_result(window_args, task_vars.get("milepost_environment"))
            result["window"] = {
                k: window.get(k)
                for k in ("open", "configured", "reason", "next_open", "overridden", "group")
            }
            if window.get("milepost_window_override"):
                result["milepost_window_override"] = window["milepost_window_override"]
            if window.get("failed"):
                return {**result, "failed": True, "msg": window["msg"]}
        module = self._execute_module(
            module_name="milepost_probe", module_args=args, task_vars=task_vars
        )
        result.update(module)
        if module.get("failed"):
            return result
        probe = (module.get("ansible_facts") or {}).get("milepost_probe")
        problem = check(probe)
        if problem is None and self._task.args.get("min_free_mb") is not None:
            try:
                least = int(self._task.args["min_free_mb"])
            except (TypeError, ValueError):
                return {**result, "failed": True, "msg": "min_free_mb must be a whole number"}
            problem = free_space_problem(host, probe["free_mb"], least)
            if problem:
                return {**result, "failed": True, "msg": problem}
        if problem:
            result.update(failed=True, msg=f"{host}: {problem}; nothing is changed on it")
            result.get("ansible_facts", {}).pop("milepost_probe", None)
        return result
