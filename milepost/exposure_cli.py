"""`milepost exposure` and `milepost exception ...` (placeholder)."""

import typer

exception_app = typer.Typer(help="Patch exceptions.", no_args_is_help=True)


def exposure() -> None:
    """Exposure of hosts to advisories."""
