"""`milepost advisory ...`: security advisories in the ledger (placeholder)."""

import typer

advisory_app = typer.Typer(help="Security advisories.", no_args_is_help=True)
