"""Action plugin milepost_inventory_check: the checks every run makes before any host is
touched (the first play of maintain.yml), on the inventory Ansible has already read: each
RUC host's vendor, pinned package names and versions, change-control rules and phase, the
vendor interfaces, the OS patching options, the phase and question commitments of group
all, and no emergency-playbook variable. The rules are
milepost.inventory.checks.run_problems, which the command line uses too. No module runs.
Documentation: plugins/modules/milepost_inventory_check.py.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from milepost.inventory.change_rules import SETTINGS_VAR as CHANGE_RULES_VAR
from milepost.inventory.checks import one_line, run_problems
from milepost.inventory.debian import OS_PATCH_CHOICES
from milepost.inventory.phase import PHASE_VAR
from milepost.inventory.question_commitments import COMMITMENTS_VAR
from milepost.inventory.reading import RUC_GROUP


#: Variables only the emergency playbook takes.
EMERGENCY_VARS = ("emergency_patch_advisory", "emergency_patch_packages")


class ActionModule(ActionBase):
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        if self._task.args:
            unknown = ", ".join(sorted(self._task.args))
            return {**result, "failed": True, "msg": f"unknown arguments: {unknown}"}
        hostvars = task_vars.get("hostvars") or {}
        hosts = {}
        for name in (task_vars.get("groups") or {}).get(RUC_GROUP) or []:
            own = hostvars[name]  # templated on access, in the host's own context
            hosts[name] = tuple(
                own[key] if key in own else None
                for key in ("milepost_vendor", "app_update_versions", CHANGE_RULES_VAR, PHASE_VAR)
            )

        def controller(key: str) -> Any:
            return self._templar.template(task_vars[key]) if key in task_vars else None

        options = {key: controller(key) for key in OS_PATCH_CHOICES}
        problems = run_problems(
            hosts,
            controller("milepost_interfaces"),
            options,
            {key: controller(key) for key in (PHASE_VAR, COMMITMENTS_VAR)},
        )
        # The emergency playbook's variables make the emergency's exception to change
        # control (milepost.change_control.gate): never on the maintenance cycle.
        misplaced = sorted(k for k in EMERGENCY_VARS if k in task_vars)
        if misplaced:
            problems.append(
                f"{', '.join(misplaced)} belong to playbooks/emergency_patch.yml"
                " (scripts/emergency-patch), not to the maintenance cycle"
            )
        if problems:
            return {**result, "failed": True, "msg": "Inventory: " + one_line(problems)}
        return {**result, "changed": False, "msg": f"{len(hosts)} RUC hosts checked"}
