"""`milepost advisory ...`: security advisories in the ledger (milepost.patching.advisories;
imports: milepost.patching.advisory_import; Debian's uploads: milepost.patching.debian_sync).

Exit codes: 0 done, 1 the ledger could not be written, 2 bad input (one line on stderr;
nothing is recorded then).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import InventoryOption, JsonOption, console, open_ledger, print_json, warn
from milepost.errors import UserError
from milepost.input_checks import check_advisory_id, check_date, check_text, shown
from milepost.inventory.debian import check_package_name, check_version
from milepost.inventory.reading import default_inventory
from milepost.patching import policy as patch_policy
from milepost.patching.advisories import add_advisory, load_advisories
from milepost.patching.advisory_import import import_kev, import_vendor, read_kev_catalog
from milepost.patching.debian_archives import load_archives
from milepost.patching.debian_reading import ArchiveReader, DirectoryReader, Reader
from milepost.patching.debian_sync import sync_debian

if TYPE_CHECKING:
    from milepost.patching.advisories import Advisory
    from milepost.patching.policy import KevProduct

advisory_app = typer.Typer(help="Security advisories.", no_args_is_help=True)


FORMATS = ("kev", "vendor")
#: Characters of a title shown in the list.
TITLE_WIDTH = 60
NO_FIX = ("", "none")


def parse_package(value: str) -> tuple[str, str | None]:
    """--package NAME=VERSION (NAME= or NAME=none: no fixed version known yet)."""
    name, sep, version = value.partition("=")
    if not sep:
        raise UserError(
            f"--package {shown(value)} is not NAME=VERSION: e.g. ruc-payment-gateway=2.4.0"
            " (NAME= when no fixed version is known yet)"
        )
    package = check_package_name(name, "--package name")
    if version.strip().lower() in NO_FIX:
        return package, None
    return package, check_version(version, f"--package version of {package}")


def _packages_text(packages: dict[str, str | None]) -> str:
    return ", ".join(
        f"{name}>={fixed}" if fixed is not None else f"{name} (no fix)"
        for name, fixed in sorted(packages.items())
    )


def _described(advisory: Advisory) -> str:
    parts = [advisory.severity]
    if advisory.kev:
        parts.append("KEV" + (f", due {advisory.due_date}" if advisory.due_date else ""))
    parts.append(f"published {advisory.published}")
    parts.append(_packages_text(advisory.packages) or "no packages")
    return "; ".join(parts)


@advisory_app.command("add")
def advisory_add(
    advisory_id: Annotated[
        str,
        typer.Option("--id", metavar="ID", help="CVE-YYYY-NNNN or a vendor id (RUC-2026-001)."),
    ],
    package: Annotated[
        list[str] | None,
        typer.Option(
            "--package",
            metavar="NAME=VERSION",
            help="An affected package and the version that fixes it (repeatable);"
            " NAME= or NAME=none: no fix known yet.",
        ),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity",
            metavar="S",
            help="critical, high, medium or low (a new KEV advisory: critical).",
        ),
    ] = None,
    kev: Annotated[
        bool | None,
        typer.Option("--kev/--no-kev", help="Listed in CISA's Known Exploited Vulnerabilities."),
    ] = None,
    due: Annotated[
        str | None,
        typer.Option("--due", metavar="YYYY-MM-DD", help="The KEV due date (needs --kev)."),
    ] = None,
    published: Annotated[
        str | None,
        typer.Option("--published", metavar="YYYY-MM-DD", help="Published (default: today)."),
    ] = None,
    title: Annotated[
        str | None, typer.Option("--title", metavar="TEXT", help="What it is (one line).")
    ] = None,
) -> None:
    """Record an advisory, or update one: the options given replace its fields and the
    packages given are added to its packages."""

    # Everything is checked before the ledger is opened.
    wanted = check_advisory_id(advisory_id, "--id")
    packages = dict(parse_package(value) for value in package or ())
    if due is not None:
        check_date(due, "--due")
    if published is not None:
        check_date(published, "--published")
    if title is not None:
        check_text(title, "--title", max_len=300)
    if severity is not None:
        check_text(severity, "--severity", max_len=16)
    ledger = open_ledger()
    before = load_advisories(ledger).get(wanted)
    advisory = add_advisory(
        ledger,
        advisory_id=wanted,
        packages=packages or None,
        severity=severity,
        kev=kev,
        published=published,
        due_date=due,
        title=title,
    )
    done = "unchanged" if before is not None and before.seq == advisory.seq else "recorded"
    console.print(
        f"advisory {escape(advisory.advisory_id)} {done} ({escape(_described(advisory))})"
    )


def _kev_products(inventory: Path | None) -> tuple[tuple[KevProduct, ...], str | None]:
    """The inventory's KEV mapping, and a warning to give once the import is done when
    there is no inventory to read it from."""

    if inventory is None:
        sources = default_inventory()
        if not any(source.exists() for source in sources):
            return (), (
                "milepost: warning: no inventory (ansible.cfg names"
                f" {', '.join(shown(str(s)) for s in sources)}): KEV entries are imported"
                " without packages; pass -i PATH to map them"
            )
    return patch_policy.load([inventory] if inventory is not None else None).kev_products, None


def _detect(path: Path) -> str:
    return "vendor" if path.suffix.lower() in (".yml", ".yaml", ".csv") else "kev"


@advisory_app.command("import")
def advisory_import(
    path: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="CISA's KEV catalog (JSON) or a vendor advisory file (.yml, .yaml, .csv).",
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="kev|vendor", help="Default: from the file."),
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "-i",
            "--inventory",
            metavar="PATH",
            help="Inventory whose milepost_kev_products maps KEV products to packages"
            " (default: the one ansible.cfg names).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import advisories: new and changed ones are recorded, all or nothing."""

    if fmt is not None and fmt not in FORMATS:
        raise UserError(f"--format {shown(fmt)} is not one of {', '.join(FORMATS)}")
    kind = fmt or _detect(path)
    warning = None
    if kind == "kev":
        products, warning = _kev_products(inventory)
        summary = import_kev(open_ledger(), path, products)
        what = f"KEV catalog {summary.catalog_version}"
    else:
        summary = import_vendor(open_ledger(), path)
        what = f"vendor advisories {shown(path.name)}"
    if warning:
        print(warning, file=sys.stderr)
    if as_json:
        print_json({"format": kind, **summary.as_dict()})
        return
    mapped = f", {summary.mapped} mapped to packages" if kind == "kev" else ""
    console.print(
        escape(
            f"imported {what}: {summary.entries} entries, {summary.added} added,"
            f" {summary.updated} updated, {summary.unchanged} unchanged{mapped}"
        )
    )


@advisory_app.command("sync")
def advisory_sync(
    inventory: InventoryOption = None,
    offline: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="DIR",
            help="Read .deb files and <package>_<version>.changelog files from this directory"
            " instead of the archives (air-gapped).",
        ),
    ] = None,
    kev: Annotated[
        Path | None,
        typer.Option(
            "--kev",
            metavar="FILE",
            help="CISA's KEV catalog (JSON) to match CVEs against (default: the KEV"
            " advisories in the ledger).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record an advisory for every Debian upload newer than what the fleet runs that names
    a CVE or comes from a security suite (the archives of milepost_debian_archives)."""

    # The quick checks first: the KEV file and the directory, before the archives are read.
    catalog = read_kev_catalog(kev) if kev is not None else None
    if offline is not None:
        reader: Reader = DirectoryReader(offline)
    else:
        reader = ArchiveReader(load_archives(inventory))
    summary = sync_debian(open_ledger(), reader, catalog)
    for message in summary.warnings:
        warn(f"warning: {message}")
    if as_json:
        print_json(summary.as_dict())
        return
    version = f" (KEV catalog {summary.catalog_version})" if summary.catalog_version else ""
    console.print(
        escape(
            f"synced Debian advisories from {summary.origin}: {summary.uploads} uploads read,"
            f" {summary.added} added, {summary.updated} updated, {summary.unchanged} unchanged,"
            f" {summary.not_recorded} without a CVE not recorded, {summary.kev} KEV"
            f" matches{version}, {len(summary.warnings)} warnings"
        )
    )


def _dash(value: Any) -> str:
    return escape(str(value)) if value not in (None, "") else "-"


def _cut(text: str | None) -> str:
    if not text:
        return "-"
    return escape(text if len(text) <= TITLE_WIDTH else text[: TITLE_WIDTH - 3] + "...")


@advisory_app.command("list")
def advisory_list(
    kev: Annotated[bool, typer.Option("--kev", help="Only KEV advisories.")] = False,
    package: Annotated[
        str | None,
        typer.Option("--package", metavar="NAME", help="Only advisories of this package."),
    ] = None,
    with_packages: Annotated[
        bool, typer.Option("--affecting", help="Only advisories that name packages.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Every advisory (its newest record), newest published first."""

    wanted = check_package_name(package, "--package") if package is not None else None
    found = [
        a
        for a in load_advisories(open_ledger()).values()
        if (not kev or a.kev)
        and (wanted is None or wanted in a.packages)
        and (not with_packages or a.packages)
    ]
    found.sort(key=lambda a: (a.published, a.advisory_id), reverse=True)
    if as_json:
        print_json([a.as_dict() for a in found])
        return
    if not found:
        console.print(
            "no advisories in the ledger match: `milepost advisory add` or"
            " `milepost advisory import` records them"
        )
        return
    table = Table("advisory", "severity", "KEV", "published", "due", "packages", "title")
    for a in found:
        table.add_row(
            escape(a.advisory_id),
            escape(a.severity),
            "yes" if a.kev else "no",
            escape(a.published),
            _dash(a.due_date),
            _dash(_packages_text(a.packages)),
            _cut(a.title),
        )
    console.print(table)
    console.print(f"{len(found)} advisories")
