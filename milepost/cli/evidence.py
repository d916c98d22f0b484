"""`milepost evidence --from DATE --to DATE --out DIR` and `milepost evidence verify DIR`:
a signed bundle of the period's maintenance for auditors, and its offline check
(milepost.evidence.bundle).

Exit codes: 0 done (verify: the bundle is what was signed), 1 verify found a file that is
not (named, with why) or the work failed, 2 bad input (one line on stderr).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from milepost.cli.common import InventoryOption, console, open_ledger, parse_until, parse_when
from milepost.errors import MilepostError, UserError
from milepost.input_checks import shown
from milepost.ledger.names import ENV_PUBLIC_KEY, PUBLIC_KEY_FILE

HELP = (
    "Evidence for auditors: one signed bundle of a period's changes, plans and approvals,"
    " outcomes and QC, deadlines, exceptions, drift and emergencies; `verify` checks it"
    " offline."
)

evidence_app = typer.Typer(help=HELP, invoke_without_command=True, no_args_is_help=True)


class BundleFailed(MilepostError):
    """Verify found a file of the bundle that is not what was signed: exit 1."""


@evidence_app.callback()
def evidence(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="DATE", help="The period's start: YYYY-MM-DD, ISO time, 30d."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="DATE",
            help="The period's end: YYYY-MM-DD (through that day, UTC), ISO time, 7d.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="The bundle's directory: must not exist yet."),
    ] = None,
    inventory: InventoryOption = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Ed25519 signing key (default .milepost/ledger-signing.key)."),
    ] = None,
) -> None:
    """Write the evidence bundle of the period --from .. --to into the new directory --out:
    ledger.jsonl (the ledger segment), checkpoint.json (its signed head), evidence.json and
    evidence.html, allowed_signers, MANIFEST.json and MANIFEST.sig (signed with the
    checkpoints' key)."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, value in (("--from", start), ("--to", end), ("--out", out))
               if value is None]  # fmt: skip
    if missing:
        raise UserError(
            f"missing {', '.join(missing)}: milepost evidence --from DATE --to DATE --out DIR"
        )
    assert start is not None and end is not None and out is not None
    begins, ends = parse_when(start, "--from"), parse_until(end)
    if begins >= ends:
        raise UserError(
            f"--from {shown(start)} is after --to {shown(end)}: give the period's start first"
        )
    from milepost.change_control.approvals import load_settings
    from milepost.evidence.bundle import write_bundle
    from milepost.ledger.chain import format_time
    from milepost.patching import policy

    sources = [inventory] if inventory is not None else None
    settings = policy.load(sources)
    signers = load_settings(sources).allowed_signers
    ledger = open_ledger()
    try:
        made = write_bundle(
            ledger, out, start=format_time(begins), end=format_time(ends), settings=settings,
            allowed_signers=signers, key_path=key,
        )  # fmt: skip
    finally:
        ledger.close()
    summary = made.summary
    console.print(
        f"evidence bundle written to {escape(str(made.path))}: {made.records} records (seq"
        f" {made.first_seq}..{made.last_seq}), {summary['changes']} changes,"
        f" {summary['deadlines_missed']} deadlines missed,"
        f" {summary['emergency_approvals_overdue']} emergency approvals overdue",
        soft_wrap=True,
    )


@evidence_app.command("verify")
def verify(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="An evidence bundle.")],
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help=(
                "The key the bundle must be signed with: base64 raw Ed25519, or a file"
                f" holding it (default: ${ENV_PUBLIC_KEY}, else .milepost/{PUBLIC_KEY_FILE});"
                " a key inside the bundle is never trusted."
            ),
        ),
    ] = None,
    allowed_signers: Annotated[
        Path | None,
        typer.Option(
            "--allowed-signers",
            metavar="FILE",
            help="Check plan signatures against this file (default: the bundle's copy).",
        ),
    ] = None,
) -> None:
    """Check a bundle offline: exit 0 when every file is what was signed, 1 naming the first
    that is not (edited, removed or added) and why, 2 for bad input."""
    from milepost.evidence.bundle import BadBundle, verify_bundle

    try:
        found = verify_bundle(directory, public_key, allowed_signers)
    except BadBundle as bad:
        raise BundleFailed(f"bundle {directory} verify FAILED: {bad}") from None
    console.print(
        f"bundle {escape(str(directory))} verified: {found.records} records, seq"
        f" {found.first_seq}..{found.last_seq}, checkpoint of {found.checkpoint_created_at}"
        f" (head {found.head_hash}, key from {escape(found.key_source)}),"
        f" {found.signatures} plan signatures checked with ssh-keygen",
        soft_wrap=True,
    )
