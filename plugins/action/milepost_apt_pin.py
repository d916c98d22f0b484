"""Action plugin milepost_apt_pin: the controller's half of safety invariant 1
(docs/SAFETY.md; module documentation: plugins/modules/milepost_apt_pin.py).

Every task that runs the module, whatever playbook or role it is in, passes here: the
advisories and patch exceptions in the maintenance ledger become the module's
security_floor for this host, and the run's milepost_allow_downgrade its
allowed_downgrades. A run applying an approved change plan (milepost_plan) installs only
the pins the plan moves, at its versions. The module then judges the host's real plan
before anything changes. A ledger that is configured but cannot be read fails the host
(fail closed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ansible.plugins.action import ActionBase

from milepost.errors import MilepostError
from milepost.inventory.debian import PACKAGE_NAME
from milepost.patching.safety import security_floor


def planned_pins(plan: Any, host: str, packages: dict[str, Any]) -> dict[str, Any]:
    """The pins of ``packages`` an approved change plan being applied (milepost_plan, set
    by `milepost apply`) lets this task install on ``host``: those the plan moves, at its
    versions. A pin the plan moves to another version is refused (the plan is stale); a
    pin it does not move is left out (already in place when the plan was made)."""
    if plan is None:
        return packages
    hosts = plan.get("hosts") if isinstance(plan, dict) else None
    if not isinstance(hosts, dict):
        raise ValueError("milepost_plan is not a change plan: set by `milepost apply` only")
    pins = (hosts.get(host) or {}).get("pins") or {}
    for name, version in packages.items():
        if name in pins and str(pins[name]) != str(version):
            raise ValueError(
                f"{host}: the approved change plan installs {name} {pins[name]}, this run"
                f" {version}: the plan is stale, make a new one"
            )
    return {name: version for name, version in packages.items() if name in pins}


def allowed_downgrades(value: Any) -> list[str]:
    """The run's milepost_allow_downgrade: a list of Debian package names (or one name)."""
    if value is None or value == "":
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(
        isinstance(n, str) and PACKAGE_NAME.fullmatch(n) for n in names
    ):
        raise ValueError(
            f"milepost_allow_downgrade must be a list of Debian package names, not {value!r}"
        )
    return list(names)


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        host = str(task_vars.get("inventory_hostname"))
        packages = args.get("packages")
        names = [str(n) for n in packages] if isinstance(packages, dict) else []
        try:
            if isinstance(packages, dict) and "milepost_plan" in task_vars:
                plan = self._templar.template(task_vars["milepost_plan"])
                args["packages"] = planned_pins(plan, host, packages)
                names = list(args["packages"])
            args["allowed_downgrades"] = allowed_downgrades(
                self._templar.template(task_vars.get("milepost_allow_downgrade"))
            )
            if not args.get("allow_downgrade"):
                args["security_floor"] = security_floor(host, names, datetime.now(UTC).date())
        except ValueError as bad:
            return {**result, "failed": True, "msg": str(bad), "milepost_package_changes": []}
        except MilepostError as exc:
            return {
                **result,
                "failed": True,
                "msg": f"{host}: cannot read the advisories in the ledger ({exc});"
                " refusing to change packages until it can be read",
                "milepost_package_changes": [],
            }
        module = self._execute_module(
            module_name="milepost_apt_pin", module_args=args, task_vars=task_vars
        )
        if module.get("failed") and str(module.get("msg", "")).startswith("Refusing"):
            module["msg"] = f"{host}: {module['msg']}"
        result.update(module)
        return result
