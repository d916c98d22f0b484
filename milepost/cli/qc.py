"""`milepost qc run`: the quality-control checks of tests/qc against the inventory, each
host's result of each check recorded in the ledger (milepost.quality.qc);
`milepost qc record-change`: why the catalogue changed, and the glitches and lessons it
answers; `milepost qc report`: QC's catch rate (milepost.oversight.catch_rate).

Exit codes: 0 every check passed (run), recorded, reported; 1 a check failed (a glitch is
opened) or the QC could not run; 2 bad input (one line on stderr), nothing run or recorded.
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
from milepost.oversight.catch_rate import (
    CATCH_RATE_COLUMNS,
    CatchRate,
    catch_rate,
    catch_rate_rows,
)
from milepost.paths import project_root
from milepost.quality.qc import (
    catalogue_warning,
    check_limit_given,
    failures,
    record_change,
    run_qc,
)
from milepost.reports.plain import DEFAULT_MONTHS, MAX_MONTHS
from milepost.reports.status import check_months

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
    glitch: Annotated[
        list[str] | None,
        typer.Option("--glitch", metavar="G-ID", help="A glitch the change answers (repeatable)."),
    ] = None,
    lesson: Annotated[
        list[str] | None,
        typer.Option("--lesson", metavar="L-ID", help="A lesson the change answers (repeatable)."),
    ] = None,
) -> None:
    """Record a change to the QC catalogue (tests/qc) and why, as a qc-process entry of the
    registers with the catalogue's digest, the files that changed and the checks added for
    glitches (marked @pytest.mark.answers("G-...")), linked to the glitches and lessons it
    answers. Each must be in the ledger."""

    ledger = open_ledger()
    try:
        note = record_change(
            ledger,
            project_root(),
            title=title,
            reason=reason,
            glitches=glitch or (),
            lessons=lesson or (),
        )
    finally:
        ledger.close()
    changed = ", ".join(note.details.get("changed") or []) or "-"
    console.print(f"qc-process {note.note_id} recorded: {escape(changed)}")
    answers = note.details.get("answers") or {}
    for check, ids in answers.items():
        console.print(f"  {escape(check)} answers {escape(', '.join(ids))}")
    linked = [*note.links["glitches"], *note.links["notes"]]
    if linked:
        console.print(f"  linked to {escape(', '.join(linked))}")


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
                escape(" ".join(filter(None, (r.message, r.caught_by and f"({r.caught_by})")))),
            )
        console.print(table)
    if bad:
        raise MilepostError(
            f"QC failed: {len(bad)} check(s) on {len({r.host for r in bad})} host(s);"
            f" glitch {glitch} opened"
        )
    if not as_json:
        console.print(f"QC passed: {len(results)} check results recorded under run {used_run}")


def _print_report(rate: CatchRate, months: int) -> None:
    table = Table(*CATCH_RATE_COLUMNS, title=f"QC's catch rate, last {months} months")
    for row in catch_rate_rows(rate):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if rate.recurring:
        console.print("Recurring glitches (same cause):")
        for r in rate.recurring:
            console.print(
                f"  {escape(r.matched_on)} {escape(r.cause)}: {escape(', '.join(r.glitches))}"
            )
    else:
        console.print("Recurring glitches (same cause): none")
    if rate.stale_checks:
        console.print(f"Checks to review (no failure in {rate.stale_months} months):")
        for c in rate.stale_checks:
            console.print(
                f"  {escape(c.check)}: {c.results} results, last failed"
                f" {escape(c.last_failed or 'never')}"
            )
    else:
        console.print(f"Checks to review (no failure in {rate.stale_months} months): none")
    if rate.flaky_checks:
        console.print("Flaky checks (failed, then passed with no change between):")
        for f in rate.flaky_checks:
            console.print(
                f"  {escape(f.check)}: {f.times} times on {escape(', '.join(f.hosts))},"
                f" last passed {escape(f.last_passed)}"
            )
    else:
        console.print("Flaky checks (failed, then passed with no change between): none")


@qc_app.command("report")
def qc_report(
    months: Annotated[
        int,
        typer.Option("--months", metavar="N", help=f"Months reported (1 to {MAX_MONTHS})."),
    ] = DEFAULT_MONTHS,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """QC's catch rate from the ledger, per month: glitches caught by QC or monitoring
    against those reported by people, mean times to detect and to correct, recurring
    glitches; checks that have not failed in six months (to review) and flaky checks."""

    check_months(months)
    ledger = open_ledger()
    try:
        rate = catch_rate(ledger, months)
    finally:
        ledger.close()
    if as_json:
        print_json(rate.as_dict())
    else:
        _print_report(rate, months)
