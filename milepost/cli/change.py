"""`milepost change open|close|list`: planned changes (milepost.drift.changes). Drift a
planned change covers is planned, not unauthorised.

Exit codes: 0 done, 1 the ledger could not be written, 2 bad input (one line on stderr).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import (
    InventoryOption,
    JsonOption,
    console,
    dash,
    inventory_groups_of,
    open_ledger,
    parse_until,
    print_json,
    short_time,
    split_list,
)
from milepost.drift.changes import changes, close_change, open_change

change_app = typer.Typer(
    help="Planned changes: drift they cover is planned, not unauthorised.", no_args_is_help=True
)


@change_app.command("open")
def change_open(
    hosts: Annotated[
        str, typer.Option("--hosts", metavar="H1,H2", help="Inventory hosts the change touches.")
    ],
    resources: Annotated[
        str,
        typer.Option(
            "--resources",
            metavar="PATTERNS",
            help="KIND:PATTERN,... (kind file, service, package, sysctl, user, sudoers, sshd;"
            " fnmatch patterns, e.g. 'file:/etc/ruc/*,service:ruc-*'), or * for any.",
        ),
    ],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why (recorded).")],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="WHEN",
            help="The change ends: YYYY-MM-DD (end of that day, UTC), ISO time, or 7d, 12h"
            " from now. Default: open until closed.",
        ),
    ] = None,
    inventory: InventoryOption = None,
) -> None:
    """Open a planned change: drift it covers is reported as planned."""

    end = parse_until(until) if until is not None else None
    known = inventory_groups_of(inventory).get("all", frozenset())
    record = open_change(
        open_ledger(),
        split_list(hosts),
        split_list(resources),
        reason,
        until=end,
        known_hosts=known,
    )
    body = record["body"]
    ends = f"until {short_time(body['until'])} UTC" if body["until"] else "until closed"
    console.print(
        f"change {body['change_id']} opened {ends}: {escape(', '.join(body['hosts']))};"
        f" {escape(', '.join(body['resources']))}"
    )


@change_app.command("close")
def change_close(
    change_id: Annotated[
        str, typer.Argument(metavar="ID", help="A change id from `milepost change list`.")
    ],
    note: Annotated[
        str | None, typer.Option("--note", metavar="TEXT", help="How it went (recorded).")
    ] = None,
) -> None:
    """Close a planned change: drift found after this is unauthorised again."""

    record = close_change(open_ledger(), change_id, note=note)
    console.print(f"change {escape(record['body']['change_id'])} closed")


@change_app.command("list")
def change_list(as_json: JsonOption = False) -> None:
    """Every planned change, oldest first, with its state: open, closed or expired."""

    found = changes(open_ledger())
    if as_json:
        print_json([c.as_dict() for c in found])
        return
    if not found:
        console.print("no changes in the ledger: `milepost change open` records one")
        return
    table = Table(
        "change",
        "state",
        "hosts",
        "resources",
        "reason",
        "opened by",
        "opened (UTC)",
        "until (UTC)",
        "closed (UTC)",
        "note",
    )
    for c in found:
        table.add_row(
            escape(c.change_id),
            c.state,
            escape(", ".join(c.hosts)),
            escape(", ".join(c.resources)),
            escape(c.reason),
            dash(c.opened_by),
            short_time(c.opened_at),
            short_time(c.until),
            short_time(c.closed_at),
            dash(c.note),
        )
    console.print(table)
