"""The records the maintenance_ledger callback writes, built from what Ansible hands it.

The callback (plugins/callback/maintenance_ledger.py) is event -> builder -> recorder: each
Ansible event calls one builder here, and what the builder returns goes to the recorder
(milepost.ansible.recorder). Builders take plain values (a result dict, a task's action,
a function that scrubs secrets) and return plain records; they know nothing of the
callback's state. Facts travel as result keys (milepost_package_changes, milepost_rollback,
milepost_health_gate, the fact milepost_progress, ...), never as task titles.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from milepost.ledger.names import TASK_PROGRESS
from milepost.ledger.runs import package_change, package_facts, task_result

__all__ = [
    "ARGUMENT_CHECK_ACTIONS",
    "MAX_EXTRA_VAR",
    "NOT_RECORDED",
    "SECRET_NAME",
    "extra_var_values",
    "is_vault",
    "result_records",
    "rolled_back",
    "runs_on",
    "secret_extra_vars",
    "task_record",
]

Scrub = Callable[[str], str]
Record = dict[str, Any]

#: Longest extra var value kept in run_started.
MAX_EXTRA_VAR = 500
NOT_RECORDED = "(value not recorded)"
#: Names that say a value is secret (password, token, api_key, ...).
SECRET_NAME = re.compile(r"(?i)(pass|secret|token|key|credential|auth|cert)")
#: The implicit task Ansible puts before a role with meta/argument_specs.yml.
ARGUMENT_CHECK_ACTIONS = frozenset(
    {"validate_argument_spec", "ansible.builtin.validate_argument_spec"}
)
#: Actions that run on the controller only, no module on the host (without a prefix).
CONTROLLER_ACTIONS = frozenset(
    {
        "add_host",
        "assert",
        "debug",
        "fail",
        "group_by",
        "import_role",
        "import_tasks",
        "include_role",
        "include_tasks",
        "include_vars",
        "meta",
        "set_fact",
        "set_stats",
        "validate_argument_spec",
        "milepost_inventory_check",
        "milepost_kill_switch",
        "milepost_window_check",
    }
)
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: What milepost_health_gate says when the module that made a change rolled it back.
GATE_ROLLED_BACK = ("rolled_back", "rollback_failed")


# ---------------------------------------------------------------- extra vars


def is_vault(value: object) -> bool:
    """An ansible-vault value (inline !vault, or encrypted text)."""
    return type(value).__name__ in ("AnsibleVaultEncryptedUnicode", "EncryptedString") or (
        isinstance(value, str) and value.startswith("$ANSIBLE_VAULT;")
    )


def _plain_text(value: object) -> str:
    """An extra var's value as text: JSON for structures, str for the rest."""
    if isinstance(value, dict | list):
        try:
            return json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


#: What AWX / Ansible Automation Platform passes every job as extra vars, by the name a
#: run_started record's identity gives it.
AWX_VARS = {
    "job_id": "awx_job_id",
    "job_template": "awx_job_template_name",
    "user": "awx_user_name",
}


def run_identity(
    given: Mapping[object, object], operator: str | None
) -> tuple[str | None, dict[str, str]]:
    """(operator, identity) of a run, and how the operator is known: under AWX/AAP the
    launching user, with the job id and template (identity source "awx"); a run applying a
    change plan, the plan's author, whose signature every host verified before it was
    touched ("change plan"); otherwise ``operator`` (MILEPOST_OPERATOR, or the login name
    when None) as the person at the keyboard says ("self-declared")."""
    awx = {
        name: _plain_text(given[var])[:200]
        for name, var in AWX_VARS.items()
        if given.get(var) not in (None, "")
    }
    if awx:
        return awx.get("user") or operator, {"source": "awx", **awx}
    plan = given.get("milepost_plan")
    if isinstance(plan, Mapping) and isinstance(plan.get("author"), str) and plan["author"]:
        author = plan["author"][:200]
        return author, {"source": "change plan", "plan_id": str(plan.get("plan_id"))[:64]}
    return operator, {"source": "self-declared"}


def extra_var_values(
    given: Mapping[object, object], own_prefixes: tuple[str, ...], scrub: Scrub
) -> dict[str, str]:
    """Every extra var of the run by name (no silent bypass). The value of Milepost's own
    variables (``own_prefixes``: milepost_*, emergency_patch_*, a role's <role>_*), which
    steer what a run does, is kept, scrubbed and cut short; a secret name or a vault value
    is masked; any other variable's value is not recorded (it may be anything, a secret
    too)."""
    found: dict[str, str] = {}
    for key, value in given.items():
        name = str(key)
        if SECRET_NAME.search(name) or is_vault(value):
            found[name] = "********"
        elif name.startswith(own_prefixes):
            found[name] = scrub(_plain_text(value))[:MAX_EXTRA_VAR]
        else:
            found[name] = NOT_RECORDED
    return found


def _values_under_secret_names(data: object) -> Iterator[object]:
    """Every value whose key, at any depth, names a secret."""
    if isinstance(data, dict):
        for name, value in data.items():
            if SECRET_NAME.search(str(name)):
                yield value
            else:
                yield from _values_under_secret_names(value)
    elif isinstance(data, list):
        for value in data:
            yield from _values_under_secret_names(value)


def secret_extra_vars(extra_vars: Iterable[str]) -> list[object]:
    """Values of the extra vars whose names say they are secret (password, token, api_key,
    ...), from key=value pairs, JSON/YAML strings and @files as given on the command line.
    Other extra vars (a window override reason, a version pin) are ordinary data."""
    found: dict[object, object] = {}
    for item in extra_vars:
        loaded: object
        if item.startswith("@"):
            try:
                loaded = yaml.safe_load(Path(os.path.expanduser(item[1:])).read_text())
            except (OSError, yaml.YAMLError):
                continue
        elif item.lstrip().startswith(("{", "[")):
            try:
                loaded = yaml.safe_load(item)
            except yaml.YAMLError:
                continue
        else:
            try:
                loaded = dict(part.split("=", 1) for part in shlex.split(item) if "=" in part)
            except ValueError:
                continue
        if isinstance(loaded, dict):
            found.update(loaded)
    return list(_values_under_secret_names(found))


# ---------------------------------------------------------------- task results


def runs_on(action: str, delegate_to: str | None, status: str) -> str | None:
    """Where the task ran a module: "host" (the managed host), "controller" (an action of
    the controller only, or delegated to it), None when skipped."""
    if status == "skipped":
        return None
    if action.rsplit(".", 1)[-1] in CONTROLLER_ACTIONS or (delegate_to or "") in LOCAL_NAMES:
        return "controller"
    return "host"


def rolled_back(result: Mapping[str, Any], status: str) -> bool:
    """Whether this result rolled the host back: the health gate inside the module that
    made the change (milepost_health_gate), or a restore to the versions found before the
    run that changed something (milepost_rollback)."""
    gate = result.get("milepost_health_gate")
    if isinstance(gate, dict) and gate.get("result") in GATE_ROLLED_BACK:
        return True
    return status == "changed" and result.get("milepost_rollback") is True


def task_record(
    run_id: str,
    host: str,
    task: str,
    status: str,
    result: Mapping[str, Any],
    **fields: Any,
) -> Record:
    """The task_result record of one host's result (``task`` and ``fields`` already
    scrubbed). A restore that changed something says so: ``rollback`` true. A task that
    set the fact milepost_progress (one of TASK_PROGRESS) says where its host now is:
    ``progress``."""
    if status == "changed" and result.get("milepost_rollback") is True:
        fields["rollback"] = True
    progress = (result.get("ansible_facts") or {}).get("milepost_progress")
    if status in ("ok", "changed") and progress in TASK_PROGRESS:
        fields["progress"] = progress
    return task_result(run_id, host, task, status, **fields)


def _scrubbed(value: object, scrub: Scrub) -> object:
    """A copy of plain data with every string scrubbed of secrets."""
    if isinstance(value, dict):
        return {str(key): _scrubbed(item, scrub) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, scrub) for item in value]
    if isinstance(value, str):
        return scrub(value)
    return value


def _own(kind: str, run_id: str, host: str | None, body: Any) -> Record:
    return {"kind": kind, "run_id": run_id, "host": host, "body": body}


def result_records(
    run_id: str,
    host: str,
    result: Mapping[str, Any],
    *,
    status: str,
    scrub: Scrub,
    check_mode: bool,
    operator: str,
) -> list[Record]:
    """The records a result's keys with a meaning of their own give, after its task_result
    (the caller leaves out no_log results): package changes (also of a failed task: what
    did happen), then, for a result that succeeded, package facts, window overrides,
    reboots required, interface checks, the host probe, drift checks, batches and, outside
    check mode, safety overrides."""
    found: list[Record] = []
    if not check_mode:
        for change in result.get("milepost_package_changes") or ():
            found.append(
                package_change(
                    run_id,
                    host,
                    str(change.get("package")),
                    change.get("from_version"),
                    change.get("to_version"),
                )
            )
    if status not in ("ok", "changed"):
        return found
    facts = result.get("ansible_facts") or {}
    packages = facts.get("packages")
    if isinstance(packages, dict):
        versions = {name: seen[0].get("version") for name, seen in packages.items() if seen}
        found.append(package_facts(run_id, host, versions))
    override = result.get("milepost_window_override")
    if isinstance(override, dict):
        body: dict[str, Any] = {key: scrub(str(value)) for key, value in override.items()}
        found.append(_own("window_override", run_id, host, body))
    reboot = result.get("milepost_reboot_required")
    if isinstance(reboot, dict):
        body = {"packages": [scrub(str(p)) for p in reboot.get("packages") or ()]}
        found.append(_own("reboot_required", run_id, host, body))
    for item in result.get("milepost_interface_results") or ():
        if isinstance(item, dict):
            messages = [scrub(str(m)) for m in item.get("messages") or ()]
            found.append(_own("interface_check", run_id, None, {**item, "messages": messages}))
    probe = facts.get("milepost_probe")
    if isinstance(probe, dict):
        found.append(_own("host_probe", run_id, host, _scrubbed(probe, scrub)))
    drift = result.get("milepost_drift")
    if isinstance(drift, dict):
        found.append(_own("drift_check", run_id, host, _scrubbed(drift, scrub)))
    batch = result.get("milepost_batch")
    if isinstance(batch, dict):
        body = {
            "play": scrub(str(batch.get("play") or "")),
            "number": batch.get("number"),
            "hosts": [str(h) for h in batch.get("hosts") or ()],
        }
        found.append(_own("batch_started", run_id, None, body))
    if check_mode:
        return found
    for used in result.get("milepost_overrides") or ():
        if isinstance(used, dict):
            body = {**{str(k): scrub(str(v)) for k, v in used.items()}, "operator": operator}
            found.append(_own("safety_override", run_id, host, body))
    return found
