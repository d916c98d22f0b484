"""`milepost plan maintain|show|list` and `milepost approve`: plans of what a run would
change, signed by their author and approved by other people (milepost.change_control).

Exit codes: 0 done, 1 the ledger could not be written, 2 bad input (one line on stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from milepost.ansible.runner import run_checked
from milepost.change_control import approvals as rules
from milepost.change_control.apply_checks import (
    check_approved,
    check_fresh,
    check_not_expired,
    check_same_options,
    plan_versions,
)
from milepost.change_control.plans import (
    Plan,
    build_content,
    build_remediate_content,
    new_plan,
    plan_record,
    plan_resources,
    run_options,
    summary_rows,
)
from milepost.change_control.signing import check_allowed_signers, sign
from milepost.cli.common import (
    AllowDowngradeOption,
    ExtraVarOption,
    InventoryOption,
    JsonOption,
    LimitOption,
    allow_downgrade_vars,
    console,
    open_ledger,
    print_json,
)
from milepost.cli.drift import (
    FindingOption,
    IncludePlannedOption,
    check_remediation,
    remediation_limit,
    remediation_targets,
)
from milepost.cli.maintain import parse_extra_vars
from milepost.drift.findings import open_findings
from milepost.errors import MilepostError, Refused, UserError
from milepost.input_checks import check_limit
from milepost.ledger.bodies import usable_run
from milepost.operator import operator_name

plan_app = typer.Typer(
    help="Change plans: exactly what a run would change, signed and approved before it runs.",
    no_args_is_help=True,
)
approve_app = typer.Typer()
apply_app = typer.Typer()

#: Longest a plan may stay valid.
MAX_VALID_HOURS = 24 * 7

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="FILE",
        help="Your SSH private key: signs the plan as its author (its public half must be in"
        " the inventory's allowed-signers file).",
    ),
]


def _verified_plan(plan_id: str, settings: rules.Settings) -> tuple[Plan, list[rules.Approval]]:
    """The plan PLAN from the ledger and its signatures that verify now."""
    ledger = open_ledger()
    try:
        plan = rules.load_plan(ledger, plan_id.strip())
        recorded = rules.recorded_signatures(ledger, plan)
    finally:
        ledger.close()
    return plan, rules.verified(plan, recorded, settings.signers()) if recorded else []


def _show(plan: Plan, needed: int, signatures: list[rules.Approval], as_json: bool) -> None:
    by = rules.author(signatures)
    approved = rules.approvers(signatures)
    if as_json:
        print_json(
            {
                **plan.body(),
                "approvals_needed": needed,
                "author": by.principal if by else None,
                "approved_by": [a.principal for a in approved],
            }
        )
        return
    table = Table(
        "batch", "host", "package or resource", "change", "why", title=f"plan {plan.plan_id}"
    )
    for row in summary_rows(plan):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    console.print(f"content {plan.content_hash}")
    console.print(
        f"made by {escape(plan.created_by)} at {plan.created_at}; valid until {plan.expires}"
    )
    signed = f"signed by its author {escape(by.principal)}" if by else "not signed by its author"
    console.print(
        f"{signed}; approvals: {len(approved)} of {needed} needed"
        + (f" ({', '.join(escape(a.principal) for a in approved)})" if approved else "")
    )


ValidHoursOption = Annotated[
    int,
    typer.Option("--valid-hours", metavar="N", help="Hours the plan may be applied (24)."),
]


def _check_start(valid_hours: int, settings: rules.Settings, key: Path | None) -> None:
    """What a plan needs before its dry run: a sensible validity and a usable key."""
    if not 1 <= valid_hours <= MAX_VALID_HOURS:
        raise UserError(f"--valid-hours must be from 1 to {MAX_VALID_HOURS}, not {valid_hours}")
    if key is not None:
        check_allowed_signers(settings.signers())
        if not key.is_file():
            raise UserError(f"--key {key} is not a file: name your SSH private key")


def _record_plan(
    build: Callable[[dict[str, Any]], dict[str, Any]],
    dry_run: str,
    settings: rules.Settings,
    key: Path | None,
    valid_hours: int,
    as_json: bool,
) -> None:
    """Make the plan from dry run ``dry_run``'s records (``build``), sign it with ``key``
    as its author, record both and show it. Nothing is recorded when the plan's hosts
    need approvals and there is no key."""
    ledger = open_ledger()
    try:
        plan = new_plan(
            build(usable_run(ledger.run(dry_run))),
            created_by=operator_name(),
            dry_run=dry_run,
            valid=timedelta(hours=valid_hours),
        )
        needed = settings.plan_needs(plan)
        if needed and key is None:
            raise UserError(
                f"the plan's hosts need {needed} approval(s): sign it as its author with --key"
                " (nothing recorded)"
            )
        signature = sign(plan.signed_text(), key) if key is not None else None
        ledger.append([plan_record(plan)])
        if signature is not None:
            rules.add_signature(ledger, plan, signature, settings.signers(), "author")
        _show(plan, needed, rules.recorded_signatures(ledger, plan), as_json)
    finally:
        ledger.close()


@plan_app.command("maintain")
def plan_maintain(
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    extra_var: ExtraVarOption = None,
    allow_downgrade: AllowDowngradeOption = None,
    key: KeyOption = None,
    valid_hours: ValidHoursOption = 24,
    as_json: JsonOption = False,
) -> None:
    """Plan a maintenance cycle: a dry run of playbooks/maintain.yml (nothing changes), then
    per host the packages it would move (from -> to), the batches, the tasks that would
    change and the refusals, recorded in the ledger with a content hash."""
    variables: dict[str, Any] = dict(parse_extra_vars(extra_var or []))
    variables.update(allow_downgrade_vars(allow_downgrade))
    if limit is not None:
        limit = check_limit(limit)
    settings = rules.load_settings([inventory] if inventory is not None else None)
    _check_start(valid_hours, settings, key)
    result = run_checked("maintain.yml", inventory=inventory, limit=limit, check=True,
                         extravars=variables, quiet=as_json)  # fmt: skip
    options = run_options(limit, variables)
    _record_plan(lambda run: build_content("maintain", options, run), result.run_id, settings,
                 key, valid_hours, as_json)  # fmt: skip


def _remediation_options(
    limit: str | None, downgrades: dict[str, Any], selection: dict[str, list[str]] | None
) -> dict[str, Any]:
    """What a remediation plan's dry run was given, which its apply gives again."""
    return {
        "limit": limit,
        "allow_downgrade": sorted(downgrades.get("milepost_allow_downgrade") or []),
        "selection": selection,
    }


def _remediation_dry_run(
    options: dict[str, Any], inventory: Path | None, quiet: bool
) -> tuple[str, dict[str, Any]]:
    """Run playbooks/remediate.yml in check mode as ``options`` say; (run id, the
    variables it was given)."""
    selection = options["selection"]
    variables: dict[str, Any] = {} if selection is None else {"milepost_remediate": selection}
    variables.update(allow_downgrade_vars(options["allow_downgrade"] or None))
    result = run_checked(
        "remediate.yml",
        inventory=inventory,
        limit=remediation_limit(selection or {}, options["limit"], selection is None),
        check=True,
        diff=True,
        extravars=variables,
        run_kind="remediation",
        quiet=quiet,
    )
    return result.run_id, variables


@plan_app.command("remediate")
def plan_remediate(
    finding: FindingOption = None,
    include_planned: IncludePlannedOption = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Every resource of the hosts (--limit) found differing by the dry run."
        ),
    ] = False,
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    allow_downgrade: AllowDowngradeOption = None,
    key: KeyOption = None,
    valid_hours: ValidHoursOption = 24,
    as_json: JsonOption = False,
) -> None:
    """Plan a drift remediation: a dry run of playbooks/remediate.yml (nothing changes) for
    the open findings `milepost drift remediate` would correct, then per host the resources
    it would put back to their baseline (each with a digest of how it differs), recorded in
    the ledger with a content hash. `milepost apply` corrects exactly those."""
    if limit is not None:
        limit = check_limit(limit)
    downgrades = allow_downgrade_vars(allow_downgrade)
    settings = rules.load_settings([inventory] if inventory is not None else None)
    _check_start(valid_hours, settings, key)
    ledger = open_ledger()
    try:
        _, selection = remediation_targets(ledger, finding, include_planned, full)
    finally:
        ledger.close()
    if not full and not selection:
        raise UserError("no open finding to correct: nothing to plan (`milepost drift report`)")
    options = _remediation_options(limit, downgrades, None if full else selection)
    dry_run, _ = _remediation_dry_run(options, inventory, as_json)
    _record_plan(
        lambda run: build_remediate_content(options, run, options["selection"]),
        dry_run, settings, key, valid_hours, as_json,
    )  # fmt: skip


@plan_app.command("show")
def plan_show(
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="The plan's id (P-...).")],
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """A plan: what it changes, its author, its approvals (verified now) and how many its
    hosts need."""
    settings = rules.load_settings([inventory] if inventory is not None else None)
    plan, good = _verified_plan(plan_id, settings)
    _show(plan, settings.plan_needs(plan), good, as_json)


@plan_app.command("list")
def plan_list(as_json: JsonOption = False) -> None:
    """Every plan, newest first: who made it, until when it may be applied, its hosts and
    the signatures recorded over it (`plan show` verifies them)."""
    ledger = open_ledger()
    try:
        plans = list(reversed(rules.load_plans(ledger)))
        signatures = {p.plan_id: rules.recorded_signatures(ledger, p) for p in plans}
    finally:
        ledger.close()
    now = datetime.now(UTC)
    rows = [
        {
            "plan_id": p.plan_id,
            "action": p.content["action"],
            "created_by": p.created_by,
            "created_at": p.created_at,
            "expires": p.expires,
            "expired": p.expired(now),
            "hosts": p.hosts(),
            "signatures": [f"{a.role}:{a.principal}" for a in signatures[p.plan_id]],
        }
        for p in plans
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no plans in the ledger")
        return
    table = Table("plan", "action", "made by", "made at", "valid until", "hosts", "signatures")
    for row in rows:
        table.add_row(
            row["plan_id"],
            row["action"],
            escape(row["created_by"]),
            row["created_at"],
            row["expires"] + (" (expired)" if row["expired"] else ""),
            str(len(row["hosts"])),
            escape(", ".join(row["signatures"]) or "-"),
        )
    console.print(table)


@approve_app.command("approve")
def approve(
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="The plan's id (P-...).")],
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Your SSH private key (its public half in the allowed-signers file).",
        ),
    ],
    inventory: InventoryOption = None,
) -> None:
    """Approve a plan: sign its id, content hash and expiry with your SSH key. Refused for
    the plan's author (four eyes), a key the allowed-signers file does not list, and a plan
    that has expired."""
    settings = rules.load_settings([inventory] if inventory is not None else None)
    allowed = settings.signers()
    ledger = open_ledger()
    try:
        plan = rules.load_plan(ledger, plan_id.strip())
        # An emergency's plan records a run that happened: it is approved even when late.
        late = plan.expired(datetime.now(UTC))
        if late and plan.approve_by is None:
            raise UserError(f"plan {plan.plan_id} expired at {plan.expires}: make a new plan")
        approval = rules.add_signature(ledger, plan, sign(plan.signed_text(), key), allowed,
                                       "approver")  # fmt: skip
        good = rules.verified(plan, rules.recorded_signatures(ledger, plan), allowed)
    finally:
        ledger.close()
    needed = settings.plan_needs(plan)
    console.print(
        f"plan {plan.plan_id} approved by {escape(approval.principal)}"
        f" ({approval.fingerprint}); approvals: {len(rules.approvers(good))} of {needed} needed"
        + (f" (late: due by {plan.approve_by})" if late else "")
    )


@apply_app.command("apply")
def apply(
    plan_id: Annotated[str, typer.Argument(metavar="PLAN", help="The plan's id (P-...).")],
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    extra_var: ExtraVarOption = None,
    allow_downgrade: AllowDowngradeOption = None,
) -> None:
    """Apply a plan, exactly: refused (exit 3) when it has expired, lacks the approvals its
    hosts need, was made with other options (--limit, -e, --allow-downgrade must be the
    plan's), or is stale (a new dry run differs). Then the cycle (a maintenance plan) or
    the remediation (a remediation plan, with its own options) runs with the plan: no
    other host, package, version or resource (each host checks it again before it is
    touched)."""
    variables: dict[str, Any] = dict(parse_extra_vars(extra_var or []))
    variables.update(allow_downgrade_vars(allow_downgrade))
    if limit is not None:
        limit = check_limit(limit)
    settings = rules.load_settings([inventory] if inventory is not None else None)
    plan, good = _verified_plan(plan_id, settings)
    if plan.action == "emergency":
        raise UserError(
            f"plan {plan.plan_id} is an emergency run's, which has run: approve it with"
            " `milepost approve`; `milepost apply` applies maintenance plans"
        )
    check_not_expired(plan, datetime.now(UTC))
    approved_by = check_approved(plan, settings.plan_needs(plan), good)
    if plan.action == "remediate":
        if limit is not None or extra_var or allow_downgrade:
            raise UserError(
                f"plan {plan.plan_id} corrects drift with the options it was made with:"
                " `milepost apply PLAN` takes no --limit, -e or --allow-downgrade for it"
            )
        _apply_remediation(plan, good, approved_by, inventory)
        return
    check_same_options(plan, limit, variables)
    _blocked(plan)
    console.print(f"plan {plan.plan_id}: a dry run first, to find whether it is still current")
    dry = run_checked("maintain.yml", inventory=inventory, limit=limit, check=True,
                      extravars=variables, quiet=True)  # fmt: skip
    ledger = open_ledger()
    try:
        now = build_content("maintain", run_options(limit, variables),
                            usable_run(ledger.run(dry.run_id)))  # fmt: skip
    finally:
        ledger.close()
    check_fresh(plan, now)
    marked = _marked(plan, good)
    result = run_checked("maintain.yml", inventory=inventory, limit=limit,
                         extravars={**variables, "milepost_plan": marked})  # fmt: skip
    if not result.succeeded:
        raise MilepostError(
            f"plan {plan.plan_id}: maintenance run {result.run_id} {result.status}"
            f" (ansible-playbook exit {result.rc}); see `milepost ledger show {result.run_id}`"
        )
    who = f" approved by {', '.join(approved_by)}" if approved_by else ""
    console.print(f"plan {plan.plan_id}{who}: applied by maintenance run {result.run_id}")


def _marked(plan: Plan, good: list[rules.Approval]) -> dict[str, Any]:
    """milepost_plan for the run applying ``plan``: its id, hash and versions per host,
    which each host checks again, and its verified author (the run's operator)."""
    by = rules.author(good)
    return {
        "plan_id": plan.plan_id,
        "content_hash": plan.content_hash,
        "hosts": plan_versions(plan),
        **({"author": by.principal} if by else {}),
    }


def _blocked(plan: Plan) -> None:
    blocked = [
        f"{host}: {(entry['refused'] + entry['unknown'])[0]}"
        for host, entry in sorted(plan.content["hosts"].items())
        if entry["refused"] or entry["unknown"]
    ]
    if blocked:
        raise Refused(f"plan {plan.plan_id} cannot be applied as it stands: {blocked[0]}")


def _apply_remediation(
    plan: Plan, good: list[rules.Approval], approved_by: list[str], inventory: Path | None
) -> None:
    """A remediation plan, exactly: a new dry run must give the plan's content, then
    playbooks/remediate.yml corrects the plan's resources of the plan's hosts and nothing
    else (each host checks it again); findings left open open a glitch."""
    _blocked(plan)
    options = plan.content["options"]
    console.print(f"plan {plan.plan_id}: a dry run first, to find whether it is still current")
    dry_run, variables = _remediation_dry_run(options, inventory, quiet=True)
    ledger = open_ledger()
    try:
        now = build_remediate_content(options, usable_run(ledger.run(dry_run)),
                                      options["selection"])  # fmt: skip
        check_fresh(plan, now)
        resources = plan_resources(plan)
        if not resources:
            console.print(f"plan {plan.plan_id}: no resource differs, nothing to correct")
            return
        targets = [f for f in open_findings(ledger) if f.resource in resources.get(f.host, ())]
        variables = {k: v for k, v in variables.items() if k != "milepost_remediate"}
        result = run_checked(
            "remediate.yml",
            inventory=inventory,
            limit=":".join(resources),
            diff=True,
            extravars={**variables, "milepost_remediate": resources,
                       "milepost_plan": _marked(plan, good)},
            run_kind="remediation",
        )  # fmt: skip
        check_remediation(ledger, result, targets)
    finally:
        ledger.close()
    who = f" approved by {', '.join(approved_by)}" if approved_by else ""
    console.print(f"plan {plan.plan_id}{who}: applied by remediation run {result.run_id}")
