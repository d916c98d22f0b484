"""`milepost emergency-patch`: patch every host exposed to one advisory now
(milepost.patching.emergency); exit codes in EMERGENCY_HELP."""

from pathlib import Path
from typing import Annotated

import typer

from milepost.change_control.emergencies import emergency_records
from milepost.cli.common import InventoryOption, console
from milepost.errors import MilepostError, Refused, UserError
from milepost.notify import notify_emergency
from milepost.patching import emergency
from milepost.patching.emergency_summary import print_summary

emergency_app = typer.Typer()


EMERGENCY_HELP = (
    "Patch every host exposed to one advisory now: canary first, health-gated, failed hosts"
    " rolled back, maintenance windows overridden (the reason is recorded)."
    "\n\n"
    "The exposed hosts come from the ledger (`milepost exposure --advisory ID`); hosts"
    " without package facts yet are checked live. The run is an `emergency` run in the"
    " ledger, linked to the advisory. Where the hosts' groups ask for approvals"
    " (milepost_change_control), the emergency runs first and is approved after: its change"
    " plan is recorded as it starts, signed with --key, and `milepost approve PLAN` is due"
    " within the group's emergency_within_hours (overdue after, on the dashboard)."
    "\n\n"
    "Exit codes: 0 every exposed host patched and verified; 1 some hosts failed (and were"
    " rolled back), were unreachable or are still exposed; 2 bad input, no host touched;"
    " 3 refused (another emergency patch holds the fleet lock, or the kill switch is set);"
    " 130 or 143 interrupted."
)


@emergency_app.command("emergency-patch", help=EMERGENCY_HELP)
def emergency_patch(
    advisory: Annotated[
        str,
        typer.Option("--advisory", metavar="ID", help="The advisory to patch (CVE or vendor id)."),
    ],
    limit: Annotated[
        str | None,
        typer.Option("--limit", metavar="PATTERN", help="Only these RUC hosts (Ansible pattern)."),
    ] = None,
    canary: Annotated[
        str, typer.Option("--canary", metavar="N", help="Hosts in the canary batch.")
    ] = "1",
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why (recorded with the window override)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the exposed hosts and the plan; touch nothing.")
    ] = False,
    inventory: InventoryOption = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Your SSH private key: signs the emergency's change plan as its author where"
            " the hosts' groups ask for approvals (they are due within the group's"
            " emergency_within_hours).",
        ),
    ] = None,
) -> None:
    """Emergency patch of one advisory (help: EMERGENCY_HELP)."""

    try:
        request = emergency.check_request(
            advisory=advisory,
            limit=limit,
            canary=canary,
            reason=reason,
            inventory=inventory,
            yes=yes,
            dry_run=dry_run,
            key=key,
        )
        summary = emergency.emergency_patch(
            request, console, announce=notify_emergency, control=emergency_records
        )
    except (UserError, Refused) as refused:
        emergency.record_refusal(advisory, str(refused), refused.exit_code)
        raise
    if summary is None:
        return
    print_summary(console, summary)
    if not summary.complete:
        raise MilepostError(
            f"emergency run {summary.run_id} did not patch every exposed host; see"
            f" `milepost ledger show {summary.run_id}`"
        )
