"""`milepost lab ...`: the local lab fleet of Debian hosts (milepost.lab).

Exit codes: 0 done (status: every host reachable), 1 a host is not reachable or the work
failed, 2 bad input (one line on stderr).
"""

import json
from typing import Annotated

import typer
from rich.table import Table

from milepost.cli.common import console
from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.lab import fleet, topology

lab_app = typer.Typer(help="The local lab fleet of Debian hosts.", no_args_is_help=True)


@lab_app.command("up")
def lab_up(
    hosts: Annotated[
        str,
        typer.Option(
            "--hosts",
            metavar="N",
            help=f"Number of hosts, {topology.MIN_HOSTS} to {topology.MAX_HOSTS}.",
        ),
    ] = str(topology.DEFAULT_HOSTS),
) -> None:
    """Start the lab: base image, signed APT repository, hosts, inventory/lab/hosts.yml."""
    # isascii: str.isdigit() also says yes to digits int() cannot read, such as '\u00b2'.
    if (
        not (hosts.isascii() and hosts.isdigit())
        or not topology.MIN_HOSTS <= int(hosts) <= topology.MAX_HOSTS
    ):
        raise UserError(
            f"--hosts must be a whole number from {topology.MIN_HOSTS} to {topology.MAX_HOSTS},"
            f" not {shown(hosts)}"
        )

    started = fleet.up(int(hosts))
    console.print(f"lab up: {len(started)} hosts; inventory written to inventory/lab/hosts.yml")


@lab_app.command("down")
def lab_down() -> None:
    """Remove every lab container and the lab inventory."""

    removed = fleet.down()
    console.print(f"lab down: removed {len(removed)} containers")


@lab_app.command("reset")
def lab_reset() -> None:
    """Put every lab host back on its oldest RUC release, without the RUC source or lock."""

    hosts = fleet.reset()
    console.print(f"lab reset: {len(hosts)} hosts back on their initial RUC versions")


@lab_app.command("status")
def lab_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A table of lab hosts: group, vendor, port, reachable, ruc-* versions."""

    rows = fleet.status()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no lab hosts: run `scripts/lab up`")
        return
    table = Table("host", "group", "vendor", "port", "reachable", "ruc-* versions")
    for r in rows:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(r["versions"].items())) or "-"
        table.add_row(
            r["name"],
            r["group"],
            r["vendor"],
            str(r["port"]),
            "yes" if r["reachable"] else f"no ({r['container']})",
            versions,
        )
    console.print(table)
    reachable = sum(1 for r in rows if r["reachable"])
    console.print(f"{reachable} of {len(rows)} hosts reachable")
    if reachable < len(rows):
        raise typer.Exit(1)
