"""`milepost report dashboard`: the status dashboard for communications and
customer-service staff, a static page read from the ledger and the inventory.
`milepost report daily-review`: the hypercare daily review for the program team.

Exit codes: 0 written (the path of index.html is printed; daily-review: the review, or one
line saying the program is not in hypercare); 1 the work failed (the ledger could not be
read, a delivery of the review failed and is recorded); 2 bad input (one line on stderr),
nothing written or sent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from milepost.cli.common import InventoryOption, open_ledger, parse_when
from milepost.errors import MilepostError
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.ledger.files import write_atomic
from milepost.notify import send_notice
from milepost.reports.daily_review import daily_review, review_text
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


@report_app.command("daily-review")
def daily_review_command(
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Write the review to FILE (plain text)."),
    ] = None,
    send: Annotated[
        bool,
        typer.Option(
            "--send",
            help="Mail it through the notice channels (milepost_notify.notices.daily_review).",
        ),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="TIME", help="Review the day before TIME (ISO-8601; default now)."
        ),
    ] = None,
    inventory: InventoryOption = None,
) -> None:
    """The hypercare daily review for the program team: the last day's runs, glitches, QC
    failures and drift, and the open questions both ways. Only while hypercare lasts
    (milepost_phase, with its dates); printed, written to FILE, mailed with --send."""

    moment = parse_when(at, "--at") if at is not None else None
    sources = [inventory] if inventory is not None else None
    ledger = open_ledger()
    try:
        review = daily_review(ledger, sources, moment)
    finally:
        ledger.close()
    if not review.in_hypercare:
        print(f"no daily review: the program is not in hypercare on {review.day} (milepost_phase)")
        return
    controller, _ = inventory_variables(sources or default_inventory(), ["milepost_program_name"])
    program = str(controller.get("milepost_program_name") or "Road Usage Charge program")
    text = review_text(review, program)
    if out is not None:
        write_atomic(out, text)
        print(out)
    else:
        print(text, end="")
    if send:
        outcome = send_notice("daily_review", sources=sources, review=review.as_dict(), at=moment)
        for line in outcome.skipped:
            print(line)
        for d in outcome.deliveries:
            print(f"{d.audience}: {d.channel}: {d.result}")
        if outcome.failed:
            first = outcome.failed[0]
            raise MilepostError(
                f"the daily_review notice to {first.audience} by {first.channel} failed:"
                f" {first.reason}; the failure is recorded"
            )
