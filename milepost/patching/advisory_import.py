"""Importing security advisories into the ledger (milepost.patching.advisories): CISA's Known
Exploited Vulnerabilities catalog (JSON) and a vendor's advisory file (YAML or CSV).

Imports are all or nothing: the whole file is checked first, then every new or changed
advisory is appended in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import ComposerError

from milepost.errors import UserError
from milepost.input_checks import check_advisory_id, check_date, check_text, shown
from milepost.inventory.debian import check_package_name, check_version
from milepost.patching.advisories import (
    MAX_TITLE,
    ImportSummary,
    _apply,
    _check_severity,
    _Given,
)
from milepost.patching.policy import KevProduct

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

__all__ = ["KevCatalog", "import_kev", "import_vendor", "read_kev_catalog"]

MAX_KEV_FILE = 64 * 1024 * 1024
MAX_VENDOR_FILE = 16 * 1024 * 1024
MAX_NAME = 200
MAX_CATALOG_VERSION = 64
VENDOR_SUFFIXES = (".yml", ".yaml", ".csv")
VENDOR_KEYS = frozenset(("id", "severity", "published", "title", "packages", "kev", "due_date"))
CSV_COLUMNS = ("id", "severity", "published", "package", "fixed_version", "title")


def _file_bytes(path: Path, what: str, max_size: int) -> bytes:
    name = shown(str(path), 200)
    try:
        if not path.is_file():
            raise UserError(f"{what} {name} does not exist or is not a file: give the file's path")
        size = path.stat().st_size
        if size > max_size:
            raise UserError(
                f"{what} {name} is {size} bytes: at most {max_size // (1024 * 1024)} MiB is"
                " read; is it the right file?"
            )
        with path.open("rb") as handle:
            data = handle.read(max_size + 1)
    except ValueError:  # a NUL in the path
        raise UserError(f"{what} {name} is not a usable file name: give the file's path") from None
    except OSError as bad:
        raise UserError(f"cannot read {what} {name}: {bad.strerror or bad}") from None
    if len(data) > max_size:
        raise UserError(f"{what} {name} is larger than {max_size // (1024 * 1024)} MiB")
    return data


def _kev_entry(entry: Any, where: str) -> _Given:
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not an object with cveID, vendorProject, product ...")
    for key in ("cveID", "vendorProject", "product", "vulnerabilityName", "dateAdded", "dueDate"):
        if not isinstance(entry.get(key), str):
            raise UserError(f"{where} field {key} is missing or not text")
    cve = check_advisory_id(entry["cveID"], f"{where} field cveID")
    if not cve.startswith("CVE-"):
        raise UserError(f"{where} field cveID {shown(cve)} is not a CVE id (CVE-YYYY-NNNN)")
    return _Given(
        advisory_id=cve,
        source="kev",
        title=check_text(
            entry["vulnerabilityName"], f"{where} field vulnerabilityName", max_len=MAX_TITLE
        ),
        kev=True,
        published=check_date(entry["dateAdded"], f"{where} field dateAdded").isoformat(),
        due_date=check_date(entry["dueDate"], f"{where} field dueDate").isoformat(),
        vendor_project=check_text(
            entry["vendorProject"], f"{where} field vendorProject", max_len=MAX_NAME
        ),
        product=check_text(entry["product"], f"{where} field product", max_len=MAX_NAME),
    )


@dataclass(frozen=True)
class KevCatalog:
    """CISA's KEV catalog as read and checked: its catalogVersion and each entry as the
    advisory it makes, with where it is in the file (for messages)."""

    version: str
    entries: tuple[tuple[_Given, str], ...]

    def due_dates(self) -> dict[str, str]:
        """{CVE id: the entry's dueDate}."""
        return {item.advisory_id: item.due_date for item, _ in self.entries if item.due_date}


def read_kev_catalog(path: Path) -> KevCatalog:
    """Read and check CISA's Known Exploited Vulnerabilities catalog (JSON) at ``path``:
    the one reader of it (import_kev, milepost.patching.debian_sync). UserError (one line
    naming the file and the first bad entry) if it is not the catalog."""
    name = shown(str(path), 200)
    data = _file_bytes(path, "KEV catalog", MAX_KEV_FILE)
    try:
        catalog = json.loads(data)
    except (ValueError, RecursionError) as bad:
        raise UserError(
            f"KEV catalog {name} is not JSON ({' '.join(str(bad).split())[:120]}): download"
            " known_exploited_vulnerabilities.json from cisa.gov"
        ) from None
    if not isinstance(catalog, dict) or not isinstance(catalog.get("vulnerabilities"), list):
        raise UserError(
            f"KEV catalog {name} is not a KEV catalog (an object with a vulnerabilities"
            " list): download known_exploited_vulnerabilities.json from cisa.gov"
        )
    version = catalog.get("catalogVersion")
    if not isinstance(version, str):
        raise UserError(f"KEV catalog {name} has no catalogVersion: is it the KEV catalog?")
    version = check_text(version, f"KEV catalog {name} catalogVersion", max_len=MAX_CATALOG_VERSION)
    entries: list[tuple[_Given, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(catalog["vulnerabilities"]):
        where = f"KEV catalog {name} entry {index}"
        item = _kev_entry(entry, where)
        if item.advisory_id in seen:
            raise UserError(
                f"{where} field cveID {item.advisory_id} repeats entry {seen[item.advisory_id]}"
            )
        seen[item.advisory_id] = index
        item.catalog_version = version
        entries.append((item, where))
    return KevCatalog(version, tuple(entries))


def import_kev(ledger: Ledger, path: Path, products: Sequence[KevProduct]) -> ImportSummary:
    """Import CISA's Known Exploited Vulnerabilities catalog (JSON) from ``path``.

    Each entry becomes (or updates) a KEV advisory: severity critical unless the existing
    advisory has another, published = dateAdded, due_date = dueDate. Entries whose
    vendorProject/product one of ``products`` matches affect that product's packages
    (fixed version unknown unless the existing advisory has one); the others have no
    packages. The whole catalog is checked first; new and changed advisories are then
    appended in one ledger transaction. Re-importing the same catalog appends nothing.
    UserError (one line naming the file and the first bad entry) for bad input.
    """
    catalog = read_kev_catalog(path)
    given = list(catalog.entries)
    mapped = sum(
        1
        for item, _ in given
        if any(p.matches(item.vendor_project or "", item.product or "") for p in products)
    )
    summary, _ = _apply(
        ledger,
        given,
        need_packages=False,
        catalog_version=catalog.version,
        mapped=mapped,
        kev_products=products,
    )
    return summary


class _NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader that refuses aliases (no "billion laughs" alias bomb)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None, None, "YAML aliases (*name) are not allowed here", event.start_mark
            )
        return super().compose_node(parent, index)


def _vendor_value(value: Any, what: str) -> str:
    """A scalar YAML gave as text (dates and whole numbers written plainly are fine)."""
    if isinstance(value, datetime):
        raise UserError(f"{what} {shown(str(value))} must be a date YYYY-MM-DD, not a time")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UserError(f"{what} {shown(value)} must be text: quote it in the file (e.g. '2.4.0')")
    return str(value)


def _vendor_entry(entry: Any, where: str) -> _Given:
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not a mapping with id, severity, published, packages")
    unknown = sorted(str(key) for key in entry if key not in VENDOR_KEYS)
    if unknown:
        raise UserError(
            f"{where} has unknown field {shown(unknown[0])}: use {', '.join(sorted(VENDOR_KEYS))}"
        )
    for key in ("id", "severity", "packages"):
        if entry.get(key) is None:
            raise UserError(f"{where} field {key} is missing")
    given = _Given(
        advisory_id=check_advisory_id(
            _vendor_value(entry["id"], f"{where} field id"), f"{where} field id"
        ),
        source="vendor",
        severity=_check_severity(
            _vendor_value(entry["severity"], f"{where} field severity"), f"{where} field severity"
        ),
    )
    if entry.get("published") is not None:
        what = f"{where} field published"
        given.published = check_date(_vendor_value(entry["published"], what), what).isoformat()
    if entry.get("due_date") is not None:
        what = f"{where} field due_date"
        given.due_date = check_date(_vendor_value(entry["due_date"], what), what).isoformat()
    if entry.get("title") is not None:
        what = f"{where} field title"
        given.title = check_text(_vendor_value(entry["title"], what), what, max_len=MAX_TITLE)
    if entry.get("kev") is not None:
        if not isinstance(entry["kev"], bool):
            raise UserError(f"{where} field kev {shown(entry['kev'])} must be true or false")
        given.kev = entry["kev"]
    packages = entry["packages"]
    if not isinstance(packages, dict) or not packages:
        raise UserError(
            f"{where} field packages must map package names to fixed versions"
            " (e.g. ruc-payment-gateway: '2.4.0'; null: no fix known yet)"
        )
    checked: dict[str, str | None] = {}
    for package, fixed in packages.items():
        what = f"{where} package"
        pkg = check_package_name(_vendor_value(package, f"{what} name"), f"{what} name")
        what = f"{where} fixed version of {pkg}"
        checked[pkg] = None if fixed is None else check_version(_vendor_value(fixed, what), what)
    given.packages = checked
    return given


def _yaml_entries(data: bytes, name: str) -> Iterator[tuple[Any, str]]:
    try:
        loader = _NoAliasLoader(data)
        try:
            loaded = loader.get_single_data()
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as bad:
        reason = " ".join(str(bad).split())[:160]
        raise UserError(f"vendor advisory file {name} is not valid YAML: {reason}") from None
    except (ValueError, OverflowError) as bad:
        # YAML's own readers of dates and numbers: 2026-13-45, an int of 5000 digits.
        reason = " ".join(str(bad).split())[:160]
        raise UserError(
            f"vendor advisory file {name} holds a value YAML cannot read ({reason}):"
            " write dates as YYYY-MM-DD and quote long numbers"
        ) from None
    if isinstance(loaded, dict) and "advisories" in loaded:
        loaded = loaded["advisories"]
    if not isinstance(loaded, list):
        raise UserError(
            f"vendor advisory file {name} must hold a list of advisories (or a mapping"
            " with the key advisories: holding the list)"
        )
    for index, entry in enumerate(loaded):
        yield entry, f"vendor advisory file {name} entry {index}"


def _csv_entries(data: bytes, name: str) -> Iterator[tuple[Any, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"vendor advisory file {name} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    merged: dict[str, dict[str, Any]] = {}
    try:
        header = reader.fieldnames or []
        if sorted(header) != sorted(CSV_COLUMNS):
            raise UserError(
                f"vendor advisory file {name} has header {shown(','.join(map(str, header)))}:"
                f" use {','.join(CSV_COLUMNS)}"
            )
        for row in reader:
            where = f"vendor advisory file {name} line {reader.line_num}"
            if None in row or any(value is None for value in row.values()):
                raise UserError(f"{where} does not have the {len(CSV_COLUMNS)} columns")
            advisory_id = row["id"].strip()
            fixed = row["fixed_version"].strip()
            entry = {
                "id": advisory_id,
                "severity": row["severity"].strip() or None,
                "published": row["published"].strip() or None,
                "title": row["title"].strip() or None,
                "packages": {
                    row["package"].strip(): None if fixed.lower() in ("", "none") else fixed
                },
            }
            first = merged.get(advisory_id)
            if first is None:
                merged[advisory_id] = {**entry, "where": where}
                continue
            for key in ("severity", "published", "title"):
                if entry[key] is not None and first[key] not in (None, entry[key]):
                    raise UserError(
                        f"{where} field {key} differs from {first['where']} for the same id"
                    )
                first[key] = first[key] or entry[key]
            first["packages"].update(entry["packages"])
    except csv.Error as bad:
        raise UserError(
            f"vendor advisory file {name} line {reader.line_num} is not CSV: {bad}"
        ) from None
    for entry in merged.values():
        where = entry.pop("where")
        yield entry, where


def import_vendor(ledger: Ledger, path: Path) -> ImportSummary:
    """Import a vendor's advisory file: YAML (.yml, .yaml: a list of advisories, or a
    mapping whose key advisories: holds the list) or CSV (.csv with the header
    id,severity,published,package,fixed_version,title; one row per package, rows of the
    same id merged). YAML fields: id, severity, published, title, packages {name:
    fixed_version}, kev, due_date. Each advisory is merged with the existing one (as
    add_advisory does). All or nothing: UserError (one line naming the file and the first
    bad entry) and nothing appended if any entry is bad.
    """
    name = shown(str(path), 200)
    suffix = path.suffix.lower()
    if suffix not in VENDOR_SUFFIXES:
        raise UserError(f"vendor advisory file {name} must be YAML (.yml, .yaml) or CSV (.csv)")
    data = _file_bytes(path, "vendor advisory file", MAX_VENDOR_FILE)
    entries = _csv_entries(data, name) if suffix == ".csv" else _yaml_entries(data, name)
    given: list[tuple[_Given, str]] = []
    seen: dict[str, str] = {}
    for entry, where in entries:
        item = _vendor_entry(entry, where)
        if item.advisory_id in seen:
            raise UserError(
                f"{where} repeats advisory {item.advisory_id} of {seen[item.advisory_id]}"
            )
        seen[item.advisory_id] = where
        given.append((item, where))
    if not given:
        raise UserError(f"vendor advisory file {name} holds no advisories")
    summary, _ = _apply(ledger, given, need_packages=True)
    return summary
