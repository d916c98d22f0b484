"""`milepost exception add|list`: the patch exceptions register
(milepost.patching.exposure): accepted, time-limited exposure with a compensating control.

Exit codes: 0 done; 2 bad input (one line on stderr), nothing recorded.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import InventoryOption, JsonOption, console, open_ledger, print_json
from milepost.input_checks import check_advisory_id, check_date
from milepost.inventory.reading import default_inventory, inventory_groups
from milepost.patching.exposure import add_exception, load_exceptions, today

exception_app = typer.Typer(
    help="Patch exceptions: accepted, time-limited exposure with a compensating control.",
    no_args_is_help=True,
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

    advisory_id = check_advisory_id(advisory)
    until: date = check_date(expires, "--expires")
    groups = inventory_groups([inventory] if inventory is not None else default_inventory())
    ledger = open_ledger()
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

    ledger = open_ledger()
    try:
        found = load_exceptions(ledger)
    finally:
        ledger.close()
    now = today()
    if not show_expired:
        found = [e for e in found if now < date.fromisoformat(e.expires)]
    if as_json:
        print_json([e.as_dict() for e in found])
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
