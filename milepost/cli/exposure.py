"""`milepost exposure`: which hosts are exposed to which advisory, and their patch
deadlines (milepost.patching.exposure).

Exit codes: 0 done (also when hosts are exposed or overdue, the table says so); 2 bad input
(one line on stderr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import InventoryOption, JsonOption, console, open_ledger, print_json
from milepost.input_checks import check_advisory_id, check_limit
from milepost.patching import exposure as model
from milepost.patching import policy as patch_policy
from milepost.patching.advisories import get_advisory

exposure_app = typer.Typer()


STATUS_STYLE = {"exposed": "red", "excepted": "yellow", "fixed": "green"}
#: How many of an advisory's CVE ids the table shows (all of them are in --json).
CVES_SHOWN = 3


def _cves(cves: tuple[str, ...]) -> str:
    if not cves:
        return "-"
    more = len(cves) - CVES_SHOWN
    return " ".join(cves[:CVES_SHOWN]) + (f" +{more} more" if more > 0 else "")


def _sources(inventory: Path | None) -> list[Path] | None:
    return [inventory] if inventory is not None else None


@exposure_app.command("exposure")
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
    """Per host and advisory: the CVEs it fixes, installed and fixed version, due date, days
    left or overdue, and the run that closed it (from the ledger's package facts and
    changes)."""

    if advisory is not None:
        advisory = check_advisory_id(advisory)
    if host is not None:
        host = check_limit(host)
    settings = patch_policy.load(_sources(inventory))
    ledger = open_ledger()
    try:
        if advisory is not None:
            # A CVE id Debian fixed in an upload names that upload's advisory.
            advisory = get_advisory(ledger, advisory).advisory_id
        items = model.exposures(
            ledger,
            settings,
            advisory_id=advisory,
            hosts={host} if host is not None else None,
        )
    finally:
        ledger.close()
    fixed = [e for e in items if e.status == "fixed"]
    if overdue:
        items = [e for e in items if e.overdue]
    elif not show_fixed and advisory is None:
        items = [e for e in items if e.status != "fixed"]
    if as_json:
        print_json([e.as_dict() for e in items])
        return
    open_count = len(model.open_hosts(items))
    if not items:
        console.print("no exposure" + (" past its due date" if overdue else "") + " recorded")
        closed = [e for e in fixed if e.closed_by]
        if closed and not overdue:
            console.print(
                f"{len({e.advisory_id for e in closed})} advisories closed on"
                f" {len({e.host for e in closed})} host(s) by patching (--all lists them)"
            )
        return
    table = Table(
        "host",
        "advisory",
        "CVEs",
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
            escape(_cves(e.cves)),
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
