"""What every `milepost` command shares: the console, the common options, opening the
ledger, printing JSON and reading times from the command line."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.debian import PACKAGE_NAME

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

__all__ = [
    "AllowDowngradeOption",
    "ExtraVarOption",
    "allow_downgrade_vars",
    "dash",
    "inventory_groups_of",
    "parse_since",
    "parse_until",
    "split_list",
    "AGE",
    "AGE_UNITS",
    "InventoryOption",
    "JsonOption",
    "LimitOption",
    "console",
    "open_ledger",
    "parse_when",
    "print_json",
    "short_time",
    "warn",
]

console = Console()
if not console.is_terminal:
    # Piped or captured output: do not squeeze tables into 80 columns.
    console = Console(width=200)


def _inventory_path(value: str) -> Path:
    """-i as given: an empty one is refused (Path("") would be the current directory)."""
    if not value.strip():
        raise typer.BadParameter("is empty: pass -i PATH to an inventory file or directory")
    return Path(value)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
InventoryOption = Annotated[
    Path | None,
    typer.Option(
        "-i",
        "--inventory",
        metavar="PATH",
        parser=_inventory_path,
        help="Inventory file or directory (default: the one ansible.cfg names).",
    ),
]
LimitOption = Annotated[
    str | None,
    typer.Option("--limit", metavar="PATTERN", help="Only these RUC hosts (Ansible pattern)."),
]

AGE = re.compile(r"(\d+)\s*([dhm])")
AGE_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def open_ledger(replay_finished: bool = True) -> Ledger:
    """The ledger, opened as every command opens it (milepost.ledger.housekeeping). The
    database layer is imported here, when a command first needs it, not when the command
    line is read: `milepost --help` and `milepost stop --help` never load it."""
    from milepost.ledger.housekeeping import open_ledger as opened

    return opened(replay_finished)


def warn(message: str) -> None:
    """One line on stderr, after "milepost: "."""
    print(f"milepost: {message}", file=sys.stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def short_time(value: str | None) -> str:
    """A recorded ISO time as YYYY-MM-DD HH:MM:SS, or "-"."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19]


def parse_when(value: str, option: str) -> datetime:
    """YYYY-MM-DD, an ISO-8601 time (UTC unless it has an offset), or an age: 7d, 12h, 30m."""
    text = value.strip()
    age = AGE.fullmatch(text)
    try:
        if age:
            return datetime.now(UTC) - timedelta(**{AGE_UNITS[age[2]]: int(age[1])})
    except OverflowError:
        raise UserError(
            f"{option} {value!r} reaches back before year 1: give a shorter age"
        ) from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"{option} {value!r} is not a date: use YYYY-MM-DD, an ISO-8601 time"
            " (UTC unless it has an offset) or an age like 7d or 12h"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise UserError(f"{option} {value!r} is outside years 1 to 9999 in UTC") from None


def _out_of_range(option: str, value: str) -> UserError:
    return UserError(
        f"{option} {shown(value)} is out of range: give a date between the years 1 and 9999"
        " or an age or duration of fewer days"
    )


def parse_since(value: str, option: str) -> datetime:
    """parse_when, with a time too far away to compute refused as bad input as well."""
    try:
        return parse_when(value, option)
    except OverflowError:
        raise _out_of_range(option, value) from None


def parse_until(value: str) -> datetime:
    """--until: YYYY-MM-DD (through the end of that day, UTC), an ISO-8601 time, or a
    duration from now: 7d, 12h, 30m."""
    text = value.strip()
    try:
        ahead = AGE.fullmatch(text.lstrip("+"))
        if ahead:
            return datetime.now(UTC) + timedelta(**{AGE_UNITS[ahead[2]]: int(ahead[1])})
        moment = parse_when(text, "--until")
        if DATE_ONLY.fullmatch(text):
            moment += timedelta(days=1)
    except OverflowError:
        raise _out_of_range("--until", value) from None
    return moment


def inventory_groups_of(inventory: Path | None) -> dict[str, frozenset[str]]:
    """The inventory's groups: of ``inventory``, or of the one ansible.cfg names."""
    from milepost.inventory.reading import default_inventory, inventory_groups

    return inventory_groups([inventory] if inventory is not None else default_inventory())


def split_list(value: str) -> list[str]:
    """The items of a comma-separated option, stripped, empty ones left out."""
    return [item.strip() for item in value.split(",") if item.strip()]


def dash(value: Any) -> str:
    """``value`` for a table cell (markup escaped), or "-" for nothing."""
    return escape(str(value)) if value not in (None, "") else "-"


ExtraVarOption = Annotated[
    list[str] | None,
    typer.Option(
        "-e",
        "--extra-var",
        metavar="KEY=VALUE",
        help="An extra variable for the playbook (repeatable; values are strings).",
    ),
]
AllowDowngradeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-downgrade",
        metavar="PACKAGE",
        help="Let this package go to an older pinned version (repeatable; recorded). Never to"
        " a version an advisory in the ledger says is vulnerable (docs/SAFETY.md).",
    ),
]


def allow_downgrade_vars(names: list[str] | None) -> dict[str, Any]:
    """milepost_allow_downgrade for the playbook; UserError for a name that is not a
    Debian package name (the inventory check refuses one the run does not pin)."""
    if not names:
        return {}
    bad = [n for n in names if not PACKAGE_NAME.fullmatch(n)]
    if bad:
        raise UserError(f"--allow-downgrade {shown(bad[0])} is not a Debian package name")
    return {"milepost_allow_downgrade": list(dict.fromkeys(names))}
