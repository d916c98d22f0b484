"""`milepost exposure` and `milepost exception add|list`: which hosts are exposed to which
advisory, their patch deadlines, and the exceptions register.

Exit codes: 0 done (exposure: also when hosts are exposed or overdue, the table says so);
2 bad input (one line on stderr).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from milepost.drift_cli import InventoryOption
from milepost.ledger.cli import _open, _print_json

exception_app = typer.Typer(
    help="Patch exceptions: accepted, time-limited exposure with a compensating control.",
    no_args_is_help=True,
)

console = Console()
if not console.is_terminal:
    console = Console(width=200)

STATUS_STYLE = {"exposed": "red", "excepted": "yellow", "fixed": "green"}

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _sources(inventory: Path | None) -> list[Path] | None:
    return [inventory] if inventory is not None else None


def exposure(
    advisory: Annotated[
        str | None, typer.Option("--advisory", metavar="ID", help="Only this advisory.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", metavar="H", help="Only this host.")] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only exposed hosts past their due date.")
    ] = False,
    show_fixed: Annotated[
        bool, typer.Option("--all", help="Also list fixed and excepted packages.")
    ] = False,
    inventory: InventoryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per host and advisory: installed and fixed version, due date, days left or overdue,
    and the run that closed it (from the ledger's package facts and changes)."""
    from milepost import exposure as model
    from milepost import patch_policy
    from milepost.advisories import get_advisory
    from milepost.input_checks import check_advisory_id, check_limit

    if advisory is not None:
        advisory = check_advisory_id(advisory)
    if host is not None:
        host = check_limit(host)
    settings = patch_policy.load(_sources(inventory))
    ledger = _open()
    try:
        if advisory is not None:
            get_advisory(ledger, advisory)
        items = model.exposures(
            ledger,
            settings,
            advisory_id=advisory,
            hosts={host} if host is not None else None,
        )
    finally:
        ledger.close()
    if overdue:
        items = [e for e in items if e.overdue]
    elif not show_fixed and advisory is None:
        items = [e for e in items if e.status != "fixed"]
    if as_json:
        _print_json([e.as_dict() for e in items])
        return
    open_count = len(model.open_hosts(items))
    if not items:
        console.print("no exposure" + (" past its due date" if overdue else "") + " recorded")
        return
    table = Table(
        "host",
        "advisory",
        "package",
        "installed",
        "fixed",
        "status",
        "due",
        "days left",
        "closed by",
    )
    for e in items:
        style = STATUS_STYLE.get(e.status, "")
        status = e.status + (
            f" ({e.exception_id} to {e.exception_expires})" if e.exception_id else ""
        )
        if e.overdue:
            status, style = "OVERDUE", "bold red"
        left = (
            "-"
            if e.status == "fixed"
            else (f"{-e.days_left} overdue" if e.days_left < 0 else str(e.days_left))
        )
        table.add_row(
            escape(e.host),
            escape(e.advisory_id) + (" (KEV)" if e.kev else ""),
            escape(e.package),
            escape(e.installed),
            escape(e.fixed or "no fix known"),
            f"[{style}]{escape(status)}[/{style}]" if style else escape(status),
            e.due,
            left,
            escape(e.closed_by or "-"),
        )
    console.print(table)
    console.print(
        f"{open_count} host(s) exposed, {len({e.host for e in items if e.overdue})} overdue"
    )


@exception_app.command("add")
def exception_add(
    advisory: Annotated[str, typer.Option("--advisory", metavar="ID", help="The advisory.")],
    host: Annotated[
        list[str],
        typer.Option("--host", metavar="H", help="A host it covers (repeatable; '*': all)."),
    ],
    expires: Annotated[
        str, typer.Option("--expires", metavar="YYYY-MM-DD", help="When it ends (UTC).")
    ],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why the host is not patched.")
    ],
    control: Annotated[
        str,
        typer.Option(
            "--control", metavar="TEXT", help="The compensating control in place meanwhile."
        ),
    ],
    inventory: InventoryOption = None,
) -> None:
    """Record an exception: the hosts stay unpatched until the expiry date, with a reason
    and a compensating control. From the expiry date on they show as overdue again."""
    from milepost.exposure import add_exception
    from milepost.input_checks import check_advisory_id, check_date
    from milepost.inventory_check import default_inventory, inventory_groups

    advisory_id = check_advisory_id(advisory)
    until: date = check_date(expires, "--expires")
    groups = inventory_groups([inventory] if inventory is not None else default_inventory())
    ledger = _open()
    try:
        added = add_exception(
            ledger,
            advisory_id=advisory_id,
            hosts=host,
            expires=until,
            reason=reason,
            compensating_control=control,
            known_hosts=groups.get("all", frozenset()),
        )
    finally:
        ledger.close()
    console.print(
        f"exception {added.exception_id} recorded: {escape(added.advisory_id)} on"
        f" {escape(', '.join(added.hosts))} until {added.expires}"
    )


@exception_app.command("list")
def exception_list(
    show_expired: Annotated[bool, typer.Option("--all", help="Also list expired ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The exceptions register (current ones unless --all)."""
    from milepost.exposure import load_exceptions, today

    ledger = _open()
    try:
        found = load_exceptions(ledger)
    finally:
        ledger.close()
    now = today()
    if not show_expired:
        found = [e for e in found if now < date.fromisoformat(e.expires)]
    if as_json:
        _print_json([e.as_dict() for e in found])
        return
    if not found:
        console.print("no exceptions" if show_expired else "no current exceptions")
        return
    table = Table(
        "id", "advisory", "hosts", "expires", "reason", "compensating control", "added by"
    )
    for e in found:
        table.add_row(
            e.exception_id,
            escape(e.advisory_id),
            escape(", ".join(e.hosts)),
            e.expires + ("" if now < date.fromisoformat(e.expires) else " (expired)"),
            escape(e.reason),
            escape(e.compensating_control),
            escape(str(e.added_by or "-")),
        )
    console.print(table)
