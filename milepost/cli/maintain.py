"""`milepost maintain`: the maintenance cycle (playbooks/maintain.yml) after the inventory
check; exit codes in MAINTAIN_HELP."""

import re
from typing import Annotated, Any

import typer

from milepost.ansible.runner import run_checked
from milepost.cli.common import (
    AllowDowngradeOption,
    ExtraVarOption,
    InventoryOption,
    allow_downgrade_vars,
    console,
)
from milepost.errors import MilepostError, UserError
from milepost.input_checks import check_limit, check_untemplated

maintain_app = typer.Typer()


EXTRA_VAR_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: Longest --reason for a window override (as the emergency patch's).
MAX_REASON = 500
OVERRIDE_VARS = ("preflight_override_window", "preflight_override_reason")


def parse_extra_vars(pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE pairs as Ansible reads -e key=value: every value a string."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(EXTRA_VAR_NAME, key):
            raise UserError(
                f"-e {pair!r} is not KEY=VALUE with KEY a variable name (letters, digits, _)"
            )
        if key in OVERRIDE_VARS:
            raise UserError(f"-e {key} is set by --override-window --reason TEXT: use those")
        if key in ("milepost_environment", "milepost_allow_downgrade"):
            raise UserError(
                f"-e {key} is not an extra var: the inventory says milepost_environment;"
                " name downgrades with --allow-downgrade PACKAGE"
            )
        found[key] = value
    return found


MAINTAIN_HELP = (
    "Run the maintenance cycle (playbooks/maintain.yml) after checking the inventory."
    "\n\n"
    "The inventory is checked before any host is touched: every RUC host has a vendor,"
    " valid package pins and well-formed windows, every vendor interface a url or host."
    " The run is recorded in the maintenance ledger."
    "\n\n"
    "Exit codes: 0 the run succeeded; 1 the run failed (a host failed or was unreachable,"
    " the window was closed, the kill switch was set); 2 bad input (inventory or options),"
    " no host touched; 130 or 143 interrupted by Ctrl-C or SIGTERM (the run is closed as"
    " aborted in the ledger)."
    "\n\n"
    "In hypercare (milepost_phase: hypercare in the inventory, or -e milepost_phase=hypercare)"
    " the canary is one host, QC runs after every batch, warnings open a glitch and a drift"
    " check follows the run."
)


@maintain_app.command("maintain", help=MAINTAIN_HELP)
def maintain(
    inventory: InventoryOption = None,
    limit: Annotated[
        str | None,
        typer.Option("--limit", metavar="PATTERN", help="Only these RUC hosts (Ansible pattern)."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Change nothing; report what would change.")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show the changes to files.")] = False,
    override_window: Annotated[
        bool,
        typer.Option(
            "--override-window",
            help="Run outside the maintenance window; needs --reason (recorded in the ledger).",
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why the window is overridden."),
    ] = None,
    extra_var: ExtraVarOption = None,
    allow_downgrade: AllowDowngradeOption = None,
) -> None:
    """Check the inventory, then run playbooks/maintain.yml (help: MAINTAIN_HELP)."""

    variables: dict[str, Any] = dict(parse_extra_vars(extra_var or []))
    variables.update(allow_downgrade_vars(allow_downgrade))
    if limit is not None:
        limit = check_limit(limit)
    if reason is not None and not override_window:
        raise UserError("--reason is only used with --override-window")
    if override_window:
        if not " ".join((reason or "").split()):
            raise UserError("--override-window needs --reason TEXT saying why (it is recorded)")
        # The reason goes to the playbook as an extra var, which Ansible templates.
        why = check_untemplated(reason or "", "--reason", max_len=MAX_REASON)
        variables.update(preflight_override_window=True, preflight_override_reason=why)
    result = run_checked(
        "maintain.yml",
        inventory=inventory,
        limit=limit,
        check=check,
        diff=diff,
        extravars=variables,
    )
    if not result.succeeded:
        raise MilepostError(
            f"maintenance run {result.run_id} {result.status} (ansible-playbook exit"
            f" {result.rc}); see `milepost ledger show {result.run_id}`"
        )
    console.print(f"maintenance run {result.run_id} successful")
    if result.phase == "hypercare" and not check:
        console.print(
            f"hypercare: drift check recorded under run {result.run_id} (`milepost drift report`)"
        )
