"""The change-control gate every changing run of the maintenance cycle passes, per host, on
the controller (the action plugin milepost_change_control, first task of preflight): a host
whose group asks for approvals is changed only by a run applying an approved change plan
(milepost_plan, set by `milepost apply`), and that plan is checked again here, from the
ledger and the allowed-signers file, whoever started the run (`milepost apply`, a plain
ansible-playbook, an AWX job). An extra var naming a plan proves nothing by itself.

A dry run (check mode) passes: plans are made from dry runs. So does an emergency run
(playbooks/emergency_patch.yml; the maintenance cycle refuses its variables), which may
come before its approval, when the ledger holds its change plan
(milepost.change_control.emergencies). A ledger or allowed-signers file that cannot be
read fails the host (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from milepost.change_control.apply_checks import check_approved, check_not_expired, plan_versions
from milepost.change_control.approvals import (
    author,
    load_plan,
    load_plans,
    recorded_signatures,
    verified,
)
from milepost.change_control.plans import plan_resources
from milepost.errors import Refused, UserError
from milepost.input_checks import shown
from milepost.inventory.change_rules import parse_rules
from milepost.ledger.book import open_existing


def signers_path(value: Any, inventory_dir: Any) -> Path | None:
    """The allowed-signers file group all names, relative to the inventory's directory."""
    if not isinstance(value, str) or not value.strip():
        return None
    path = Path(value)
    if not path.is_absolute() and isinstance(inventory_dir, str) and inventory_dir:
        path = Path(inventory_dir) / path
    return path


def plan_variable(plan: Any) -> tuple[str, dict[str, Any]]:
    """(plan id, {host: {os, pins}}) of a milepost_plan extra var; UserError otherwise."""
    if not isinstance(plan, Mapping) or not isinstance(plan.get("hosts"), Mapping):
        raise UserError("milepost_plan is not a change plan: it is set by `milepost apply` only")
    return str(plan.get("plan_id")), {str(h): dict(v) for h, v in plan["hosts"].items()}


def _emergency_plan(host: str, run_id: str | None, ledger_url: str | None) -> str:
    """Why emergency run ``run_id`` may change ``host`` before its approval: the ledger
    holds the run's change plan (recorded by `milepost emergency-patch`) naming the host."""
    ledger = open_existing(ledger_url)
    if ledger is None:
        raise Refused(f"{host}: the emergency's change plan cannot be checked: no ledger")
    try:
        found = next(
            (p for p in load_plans(ledger) if p.action == "emergency" and p.dry_run == run_id),
            None,
        )
    finally:
        ledger.close()
    if found is None or host not in found.content["hosts"]:
        raise Refused(
            f"{host} needs approvals: an emergency on it runs only through"
            " `milepost emergency-patch --key`, which records the change plan to approve"
        )
    return (
        f"{host}: emergency run under change plan {found.plan_id}, to be approved by"
        f" {found.approve_by}"
    )


def check_host(
    host: str,
    rules_value: Any,
    plan: Any,
    allowed_signers: Path | None,
    now: datetime,
    *,
    emergency: bool = False,
    run_id: str | None = None,
    ledger_url: str | None = None,
    how: str | None = None,
    action: str = "maintain",
    resources: Any = None,
) -> str:
    """Why ``host`` may be changed by this run (one line), or Refused/UserError saying why
    not. ``rules_value``: the host's milepost_change_control; ``plan``: the run's
    milepost_plan or None; ``emergency``: the run is the emergency playbook's, which may
    come before its approval when the ledger holds its change plan (run ``run_id``);
    ``how``: what a refusal without a plan tells the operator to do instead; ``action``:
    the kind of plan the run applies (a plan of another kind is refused); ``resources``:
    what a remediation run corrects on the host (its baseline_only), which must be
    exactly the remediation plan's."""
    rules = parse_rules(rules_value, f"host {host}")
    if plan is None:
        if rules.approvals and emergency:
            return _emergency_plan(host, run_id, ledger_url)
        if rules.approvals:
            raise Refused(
                f"{host} needs an approved change plan ({rules.approvals} approval(s)): "
                + (how or "`milepost plan maintain`, `milepost approve`, then `milepost apply`")
            )
        return f"{host}: no approval needed"
    wanted, hosts = plan_variable(plan)
    ledger = open_existing(ledger_url)
    if ledger is None:
        raise Refused(f"{host}: change plan {shown(wanted)} cannot be checked: no ledger")
    try:
        found = load_plan(ledger, wanted)
        recorded = recorded_signatures(ledger, found)
    finally:
        ledger.close()
    if found.action != action:
        raise Refused(
            f"{host}: change plan {found.plan_id} is a plan to {found.action}, not to {action}"
        )
    check_not_expired(found, now)
    if host not in found.content["hosts"]:
        raise Refused(f"{host} is not in change plan {found.plan_id}: it is left untouched")
    if action == "remediate":
        planned = plan_resources(found).get(host, [])
        given = sorted(str(r) for r in resources) if isinstance(resources, list) else None
        if not planned or given != planned:
            raise Refused(
                f"{host}: this run would correct other resources than change plan"
                f" {found.plan_id} names: apply it with `milepost apply`"
            )
    if hosts != plan_versions(found):
        raise Refused(
            f"{host}: the versions this run was given are not change plan {found.plan_id}'s:"
            " apply it with `milepost apply`"
        )
    if allowed_signers is None and (rules.approvals or recorded):
        raise UserError(
            "the inventory names no allowed-signers file (milepost_change_control"
            ".allowed_signers in group all): the plan's signatures cannot be checked"
        )
    good = verified(found, recorded, allowed_signers) if recorded and allowed_signers else []
    check_approved(found, rules.approvals, good)
    # The run records its operator as the plan's author: only the one whose signature holds.
    claimed = plan.get("author")
    by = author(good)
    if claimed is not None and (by is None or by.principal != claimed):
        raise Refused(
            f"{host}: change plan {found.plan_id} is not signed by {shown(claimed)}:"
            " apply it with `milepost apply`"
        )
    return f"{host}: change plan {found.plan_id}, approvals verified"


def check_task(host: str, args: Mapping[str, Any], now: datetime) -> str:
    """check_host with the arguments a task gives the gate (the probe's change_control,
    or milepost_change_control's): rules, plan, allowed_signers, inventory_dir, and
    optionally emergency, run_id, action, resources and how."""
    return check_host(
        host,
        args.get("rules"),
        args.get("plan"),
        signers_path(args.get("allowed_signers"), args.get("inventory_dir")),
        now,
        emergency=bool(args.get("emergency")),
        run_id=str(args.get("run_id") or "") or None,
        action=str(args.get("action") or "maintain"),
        resources=args.get("resources"),
        how=" ".join(str(args.get("how") or "").split()) or None,
    )
