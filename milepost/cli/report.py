"""`milepost report dashboard`: the status dashboard for communications and
customer-service staff, a static page read from the ledger and the inventory.

Exit codes: 0 written (the path of index.html is printed); 1 the work failed (the ledger
could not be read); 2 bad input (one line on stderr), nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from milepost.cli.common import InventoryOption
from milepost.errors import MilepostError
from milepost.reports.dashboard import write_dashboard
from milepost.reports.plain import DEFAULT_MONTHS, MAX_MONTHS

report_app = typer.Typer(
    help="Reports for communications and customer-service staff.", no_args_is_help=True
)


@report_app.callback()
def report() -> None:
    """Reports read from the ledger and the inventory, in plain words."""


@report_app.command("dashboard")
def dashboard(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Directory for index.html and status.json (created if missing).",
        ),
    ],
    inventory: InventoryOption = None,
    months: Annotated[
        int,
        typer.Option(
            "--months",
            metavar="N",
            help=f"Months shown in the charts (1 to {MAX_MONTHS}).",
        ),
    ] = DEFAULT_MONTHS,
) -> None:
    """Write the status dashboard to DIR/index.html and DIR/status.json.

    One self-contained page (no script, works from a file share) for communications and
    customer-service staff: systems, vendor interfaces, open problems, recent changes,
    security updates, vendors this month and trends, read from the ledger and inventory."""

    try:
        index = write_dashboard(out, [inventory] if inventory is not None else None, months)
    except MilepostError as failed:
        print(f"milepost: error: {failed}", file=sys.stderr)
        raise typer.Exit(failed.exit_code) from None
    print(index)
