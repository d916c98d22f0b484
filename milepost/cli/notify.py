"""`milepost notify upcoming|completed|emergency|glitch`: plain-language notices for
communications and customer-service staff (milepost.notify), by e-mail and webhook, each
delivery recorded in the ledger.

Exit codes: 0 every delivery sent (or nothing to send, said in one line); 1 a delivery
failed (recorded as failed; the message names the audience and the reason); 2 bad input
(one line on stderr): milepost_notify not set, an unknown audience, run or glitch, a
template that does not render. Nothing is sent or recorded with --dry-run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from milepost.cli.common import InventoryOption
from milepost.errors import MilepostError, UserError
from milepost.notify import send_notice
from milepost.notify.content import check_run_id

if TYPE_CHECKING:
    from milepost.notify import Outcome

notify_app = typer.Typer(
    help="Notices for communications and customer-service staff.", no_args_is_help=True
)

AudienceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--audience",
        metavar="NAME",
        help="Send to this audience (repeatable; default: milepost_notify.notices).",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print the notices; send and record nothing.")
]
RunIdOption = Annotated[
    str, typer.Option("--run-id", metavar="ID", help="The run (`milepost ledger runs`).")
]


def _sources(inventory: Path | None) -> list[Path] | None:
    return [inventory] if inventory is not None else None


def _recipients(count: int) -> str:
    return f"{count} recipient{'s' if count != 1 else ''}"


def _report(outcome: Outcome) -> None:
    """One line per delivery (a dry run: each notice in full), one per audience left out;
    exit 1 (MilepostError) when a delivery failed."""
    for line in outcome.skipped:
        typer.echo(line)
    for d in outcome.deliveries:
        to = _recipients(len(d.recipients)) if d.channel == "email" else d.recipients[0]
        if outcome.dry_run:
            typer.echo(f"--- {d.audience}, {d.channel} to {to} (dry run: not sent)")
            typer.echo(f"Subject: {d.subject}\n")
            typer.echo(d.text, nl=False)
            continue
        result = d.result if d.reason is None else f"{d.result}: {d.reason}"
        typer.echo(f"{d.audience}: {d.channel} to {to}: {result}")
    failed = outcome.failed
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise MilepostError(
            f"the {outcome.notice} notice to {first.audience} by {first.channel} failed after"
            f" {first.attempts} attempt(s): {first.reason}{more}; the failure is recorded"
        )


def _send(
    kind: str,
    inventory: Path | None,
    audiences: Sequence[str] | None,
    dry_run: bool,
    **options: object,
) -> None:

    outcome = send_notice(
        kind,
        sources=_sources(inventory),
        audiences=list(audiences) if audiences else None,
        dry_run=dry_run,
        **options,  # type: ignore[arg-type]
    )
    _report(outcome)


@notify_app.command("upcoming")
def notify_upcoming(
    within: Annotated[
        float,
        typer.Option(
            "--within", metavar="HOURS", help="Only windows opening within HOURS (default 48)."
        ),
    ] = 48,
    system: Annotated[
        list[str] | None,
        typer.Option(
            "--system",
            metavar="KEY",
            help="Only this system (its inventory group; repeatable). A system without a"
            " window is then announced at a time agreed with operations.",
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="Work starts now (what a starting run sends): the systems given with"
            " --system, or every system, until their window closes.",
        ),
    ] = False,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", metavar="ID", help="With --now: the run that is starting."),
    ] = None,
    audience: AudienceOption = None,
    dry_run: DryRunOption = False,
    inventory: InventoryOption = None,
) -> None:
    """Tell staff about maintenance windows opening soon (each window once per audience)."""
    if run_id is not None and not now:
        raise UserError("--run-id goes with --now (the run starting now): add --now")
    if run_id is not None:
        run_id = check_run_id(run_id)
    _send(
        "upcoming",
        inventory,
        audience,
        dry_run,
        within_hours=within,
        systems=list(system) if system else None,
        now=now,
        run_id=run_id,
    )


@notify_app.command("completed")
def notify_completed(
    run_id: RunIdOption,
    audience: AudienceOption = None,
    dry_run: DryRunOption = False,
    inventory: InventoryOption = None,
) -> None:
    """Tell staff how a run went: what changed, what went wrong, per system."""
    _send("completed", inventory, audience, dry_run, run_id=run_id)


@notify_app.command("emergency")
def notify_emergency(
    run_id: RunIdOption,
    audience: AudienceOption = None,
    dry_run: DryRunOption = False,
    inventory: InventoryOption = None,
) -> None:
    """Tell staff about an emergency patch: its start, or its outcome once it ended."""
    _send("emergency", inventory, audience, dry_run, run_id=run_id)


@notify_app.command("glitch")
def notify_glitch(
    note: Annotated[
        str, typer.Option("--note", metavar="ID", help="The glitch (G-..., `milepost note list`).")
    ],
    audience: AudienceOption = None,
    dry_run: DryRunOption = False,
    inventory: InventoryOption = None,
) -> None:
    """Tell staff about a glitch: what, since when, which systems, what is being done."""
    _send("glitch", inventory, audience, dry_run, note_id=note)
