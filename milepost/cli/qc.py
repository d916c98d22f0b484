"""`milepost qc run`: the quality-control checks of tests/qc against the inventory, each
host's result of each check recorded in the ledger (milepost.quality.qc).

Exit codes: 0 every check passed; 1 a check failed (a glitch is opened) or the QC could not
run; 2 bad input (one line on stderr), nothing run.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import InventoryOption, console, open_ledger, print_json
from milepost.errors import MilepostError
from milepost.input_checks import check_text
from milepost.ledger import Ledger
from milepost.paths import project_root
from milepost.quality.qc import (
    catalogue_warning,
    check_limit_given,
    failures,
    record_change,
    run_qc,
)

qc_app = typer.Typer(help="Quality control after every change.", no_args_is_help=True)


STATUS_STYLE = {"passed": "green", "failed": "red", "error": "red", "skipped": "dim"}


def _warn_if_catalogue_changed() -> None:
    try:
        with Ledger.open() as ledger:
            warning = catalogue_warning(ledger, project_root())
    except (MilepostError, OSError):
        return  # the ledger is down: the results were spooled, with their own warning
    if warning:
        print(f"milepost: warning: {warning}", file=sys.stderr)


@qc_app.command("record-change")
def qc_record_change(
    title: Annotated[str, typer.Option("--title", metavar="TEXT", help="What changed.")],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (the lesson, glitch or rule).")
    ],
) -> None:
    """Record a change to the QC catalogue (tests/qc) and why, as a qc-process entry of the
    registers with the catalogue's digest and the files that changed."""

    ledger = open_ledger()
    try:
        note = record_change(ledger, project_root(), title=title, reason=reason)
    finally:
        ledger.close()
    changed = ", ".join(note.details.get("changed") or []) or "-"
    console.print(f"qc-process {note.note_id} recorded: {escape(changed)}")


@qc_app.command("run")
def qc_run(
    limit: Annotated[
        str | None,
        typer.Option("--limit", metavar="PATTERN", help="Only these RUC hosts (Ansible pattern)."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id", metavar="ID", help="Record the results under this maintenance run."
        ),
    ] = None,
    inventory: InventoryOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the QC checks (tests/qc) on every RUC host (or --limit) and record each host's
    result of each check; any failure opens a glitch."""

    pattern = check_limit_given(limit)
    rid = check_text(run_id, "--run-id", max_len=128) if run_id is not None else None
    used_run, results, glitch = run_qc(inventory=inventory, limit=pattern, run_id=rid)
    _warn_if_catalogue_changed()
    bad = failures(results)
    if as_json:
        print_json(
            {"run_id": used_run, "glitch": glitch, "results": [r.as_dict() for r in results]}
        )
    else:
        table = Table("host", "check", "status", "message", title=f"QC of run {used_run}")
        for r in results:
            style = STATUS_STYLE.get(r.status, "")
            table.add_row(
                escape(r.host),
                escape(r.check),
                f"[{style}]{escape(r.status)}[/{style}]",
                escape(r.message or ""),
            )
        console.print(table)
    if bad:
        raise MilepostError(
            f"QC failed: {len(bad)} check(s) on {len({r.host for r in bad})} host(s);"
            f" glitch {glitch} opened"
        )
    if not as_json:
        console.print(f"QC passed: {len(results)} check results recorded under run {used_run}")
