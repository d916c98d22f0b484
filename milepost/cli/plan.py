"""`milepost plan maintain|show|list` and `milepost approve`: plans of what a run would
change, signed by their author and approved by other people (milepost.change_control).

Exit codes: 0 done, 1 the ledger could not be written, 2 bad input (one line on stderr).
"""

from __future__ import annotations

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
    new_plan,
    plan_record,
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
from milepost.cli.maintain import parse_extra_vars
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
    table = Table("batch", "host", "package", "change", "why", title=f"plan {plan.plan_id}")
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


@plan_app.command("maintain")
def plan_maintain(
    inventory: InventoryOption = None,
    limit: LimitOption = None,
    extra_var: ExtraVarOption = None,
    allow_downgrade: AllowDowngradeOption = None,
    key: KeyOption = None,
    valid_hours: Annotated[
        int,
        typer.Option("--valid-hours", metavar="N", help="Hours the plan may be applied (24)."),
    ] = 24,
    as_json: JsonOption = False,
) -> None:
    """Plan a maintenance cycle: a dry run of playbooks/maintain.yml (nothing changes), then
    per host the packages it would move (from -> to), the batches, the tasks that would
    change and the refusals, recorded in the ledger with a content hash."""
    if not 1 <= valid_hours <= MAX_VALID_HOURS:
        raise UserError(f"--valid-hours must be from 1 to {MAX_VALID_HOURS}, not {valid_hours}")
    variables: dict[str, Any] = dict(parse_extra_vars(extra_var or []))
    variables.update(allow_downgrade_vars(allow_downgrade))
    if limit is not None:
        limit = check_limit(limit)
    settings = rules.load_settings([inventory] if inventory is not None else None)
    if key is not None:
        check_allowed_signers(settings.signers())
        if not key.is_file():
            raise UserError(f"--key {key} is not a file: name your SSH private key")
    result = run_checked("maintain.yml", inventory=inventory, limit=limit, check=True,
                         extravars=variables, quiet=as_json)  # fmt: skip
    ledger = open_ledger()
    try:
        content = build_content(
            "maintain", run_options(limit, variables), usable_run(ledger.run(result.run_id))
        )
        plan = new_plan(
            content,
            created_by=operator_name(),
            dry_run=result.run_id,
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
    plan's), or is stale (a new dry run differs). Then the cycle runs with the plan: no
    other host, package or version (each host checks it again before it is touched)."""
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
    check_same_options(plan, limit, variables)
    blocked = [
        f"{host}: {(entry['refused'] + entry['unknown'])[0]}"
        for host, entry in sorted(plan.content["hosts"].items())
        if entry["refused"] or entry["unknown"]
    ]
    if blocked:
        raise Refused(f"plan {plan.plan_id} cannot be applied as it stands: {blocked[0]}")
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
    by = rules.author(good)
    marked = {
        "plan_id": plan.plan_id,
        "content_hash": plan.content_hash,
        "hosts": plan_versions(plan),
        # The run's operator, as its ledger records it: the plan's author, verified.
        **({"author": by.principal} if by else {}),
    }
    result = run_checked("maintain.yml", inventory=inventory, limit=limit,
                         extravars={**variables, "milepost_plan": marked})  # fmt: skip
    if not result.succeeded:
        raise MilepostError(
            f"plan {plan.plan_id}: maintenance run {result.run_id} {result.status}"
            f" (ansible-playbook exit {result.rc}); see `milepost ledger show {result.run_id}`"
        )
    who = f" approved by {', '.join(approved_by)}" if approved_by else ""
    console.print(f"plan {plan.plan_id}{who}: applied by maintenance run {result.run_id}")
