"""Security advisories in the ledger: added by hand, imported from CISA's KEV catalog or a
vendor's advisory file.

An advisory is a record of kind ``advisory`` (run_id and host null) whose body is::

    {"advisory_id": "CVE-2025-12345", "source": "kev" | "vendor" | "manual",
     "title": str | None, "severity": "critical" | "high" | "medium" | "low",
     "kev": bool, "published": "YYYY-MM-DD", "due_date": "YYYY-MM-DD" | None,
     "packages": {"ruc-payment-gateway": "2.4.0" | None},
     "vendor_project": str | None, "product": str | None,
     "catalog_version": str | None, "recorded_by": str}

``packages`` maps each affected Debian package to the version that fixes it (None: no fix
known yet). ``due_date`` is the KEV catalog's dueDate (only a KEV advisory has one).
Records are never updated: the newest ``advisory`` record of an id is the advisory. A new
record is appended only when something changed (recorded_by and catalog_version aside:
``catalog_version`` is the KEV catalog that last changed the advisory).

Imports are all or nothing: the whole file is checked first, then every new or changed
advisory is appended in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from yaml.composer import ComposerError

from milepost.errors import UserError
from milepost.input_checks import check_advisory_id, check_date, check_text, shown
from milepost.inventory.debian import check_package_name, check_version
from milepost.inventory.severities import SEVERITIES
from milepost.ledger.bodies import usable
from milepost.ledger.chain import utc_now
from milepost.ledger.names import ADVISORY_SOURCES as SOURCES
from milepost.ledger.names import MAX_ADVISORY_PACKAGES as MAX_PACKAGES
from milepost.ledger.schema import records as T
from milepost.ledger.store import LedgerUnavailable, prepare, problem
from milepost.operator import operator_name
from milepost.patching.policy import KevProduct

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = [
    "KIND",
    "SOURCES",
    "Advisory",
    "ImportSummary",
    "add_advisory",
    "get_advisory",
    "import_kev",
    "import_vendor",
    "load_advisories",
]

KIND = "advisory"
MAX_KEV_FILE = 64 * 1024 * 1024
MAX_VENDOR_FILE = 16 * 1024 * 1024
MAX_TITLE = 300
MAX_NAME = 200
MAX_CATALOG_VERSION = 64
VENDOR_SUFFIXES = (".yml", ".yaml", ".csv")
VENDOR_KEYS = frozenset(("id", "severity", "published", "title", "packages", "kev", "due_date"))
CSV_COLUMNS = ("id", "severity", "published", "package", "fixed_version", "title")
#: Body fields that do not make a new record by themselves.
NOT_COMPARED = ("recorded_by", "catalog_version")


@dataclass(frozen=True)
class Advisory:
    """An advisory as its newest ledger record says it is."""

    advisory_id: str
    source: str
    title: str | None
    severity: str
    kev: bool
    published: str
    due_date: str | None
    packages: dict[str, str | None] = field(hash=False)
    vendor_project: str | None
    product: str | None
    recorded_at: str
    seq: int
    catalog_version: str | None = None
    recorded_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["packages"] = dict(self.packages)
        return data

    def body(self) -> dict[str, Any]:
        """The record body this advisory was read from."""
        return {
            "advisory_id": self.advisory_id,
            "source": self.source,
            "title": self.title,
            "severity": self.severity,
            "kev": self.kev,
            "published": self.published,
            "due_date": self.due_date,
            "packages": dict(self.packages),
            "vendor_project": self.vendor_project,
            "product": self.product,
            "catalog_version": self.catalog_version,
            "recorded_by": self.recorded_by,
        }


@dataclass(frozen=True)
class ImportSummary:
    """What an import did: advisories added, updated (changed) and unchanged; entries
    mapped to packages (KEV: inventory's milepost_kev_products); the catalog's version."""

    added: int
    updated: int
    unchanged: int
    mapped: int
    catalog_version: str | None

    @property
    def entries(self) -> int:
        return self.added + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "entries": self.entries}


@dataclass
class _Given:
    """Fields of an advisory as an input gives them, checked; None: not given."""

    advisory_id: str
    source: str | None = None
    title: str | None = None
    severity: str | None = None
    kev: bool | None = None
    published: str | None = None
    due_date: str | None = None
    packages: dict[str, str | None] | None = None
    vendor_project: str | None = None
    product: str | None = None
    catalog_version: str | None = None


# ------------------------------------------------------------------ reading


def _opt_text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _from_record(seq: int, recorded_at: str, body: Any) -> Advisory | None:
    if not isinstance(body, dict) or not isinstance(body.get("advisory_id"), str):
        return None
    packages = body.get("packages")
    return Advisory(
        advisory_id=body["advisory_id"],
        source=str(body.get("source") or "manual"),
        title=_opt_text(body.get("title")),
        severity=str(body.get("severity") or "critical"),
        kev=body.get("kev") is True,
        published=str(body.get("published") or recorded_at[:10]),
        due_date=_opt_text(body.get("due_date")),
        packages={
            str(name): (str(fixed) if fixed is not None else None)
            for name, fixed in (packages.items() if isinstance(packages, dict) else ())
        },
        vendor_project=_opt_text(body.get("vendor_project")),
        product=_opt_text(body.get("product")),
        recorded_at=recorded_at,
        seq=seq,
        catalog_version=_opt_text(body.get("catalog_version")),
        recorded_by=_opt_text(body.get("recorded_by")),
    )


def _load(conn: Connection) -> dict[str, Advisory]:
    found: dict[str, Advisory] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.recorded_at, T.c.body).where(T.c.kind == KIND).order_by(T.c.seq)
    )
    for seq, recorded_at, body_text in rows:
        body = usable(int(seq), KIND, body_text)
        advisory = _from_record(int(seq), str(recorded_at), body) if body is not None else None
        if advisory is not None:
            found[advisory.advisory_id] = advisory
    return found


def load_advisories(ledger: Ledger) -> dict[str, Advisory]:
    """Every advisory by id: the newest advisory record of each id (one query)."""
    with ledger.read_transaction() as conn:
        return _load(conn)


def get_advisory(ledger: Ledger, advisory_id: str) -> Advisory:
    """The advisory ``advisory_id``; UserError if the id is malformed or unknown."""
    wanted = check_advisory_id(advisory_id)
    found = load_advisories(ledger).get(wanted)
    if found is None:
        raise UserError(
            f"unknown advisory {wanted}: add it with `milepost advisory add` or import it"
        )
    return found


# ------------------------------------------------------------------ merging


def _check_severity(value: str, what: str) -> str:
    text = check_text(value, what, max_len=16).lower()
    if text not in SEVERITIES:
        raise UserError(f"{what} {shown(value)} is not a severity: use {', '.join(SEVERITIES)}")
    return text


def _date_text(value: str | date, what: str) -> str:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    return check_date(value, what).isoformat()


def _merge(
    existing: Advisory | None, given: _Given, where: str, *, need_packages: bool
) -> dict[str, Any]:
    """The body of the advisory ``given`` makes of ``existing`` (None: a new one)."""
    name = given.advisory_id
    old = existing.body() if existing is not None else {}
    kev = given.kev if given.kev is not None else bool(old.get("kev"))
    severity = given.severity or old.get("severity") or ("critical" if kev else None)
    if severity is None:
        raise UserError(f"{where}: new advisory {name} needs a severity ({', '.join(SEVERITIES)})")
    packages: dict[str, str | None] = dict(old.get("packages") or {})
    packages.update(given.packages or {})
    if need_packages and existing is None and not packages:
        raise UserError(
            f"{where}: new advisory {name} needs at least one package (NAME=FIXED_VERSION)"
        )
    if len(packages) > MAX_PACKAGES:
        raise UserError(f"{where}: advisory {name} names more than {MAX_PACKAGES} packages")
    due_date = given.due_date
    if due_date is not None and not kev:
        raise UserError(
            f"{where}: advisory {name} has a due date but is not a KEV advisory:"
            " a due date is the KEV catalog's (mark it KEV or drop the due date)"
        )
    if due_date is None and kev:
        due_date = old.get("due_date")
    return {
        "advisory_id": name,
        "source": given.source or old.get("source") or "manual",
        "title": given.title if given.title is not None else old.get("title"),
        "severity": severity,
        "kev": kev,
        "published": given.published
        or old.get("published")
        or datetime.now(UTC).date().isoformat(),
        "due_date": due_date,
        "packages": dict(sorted(packages.items())),
        "vendor_project": given.vendor_project or old.get("vendor_project"),
        "product": given.product or old.get("product"),
        "catalog_version": given.catalog_version or old.get("catalog_version"),
    }


def _changed(existing: Advisory | None, body: Mapping[str, Any]) -> bool:
    if existing is None:
        return True
    old = existing.body()
    return any(old.get(key) != body.get(key) for key in body if key not in NOT_COMPARED)


def _record(body: Mapping[str, Any], now: str, recorded_by: str) -> dict[str, Any]:
    return {
        "kind": KIND,
        "run_id": None,
        "host": None,
        "recorded_at": now,
        "body": {**body, "recorded_by": recorded_by},
    }


def _apply(
    ledger: Ledger,
    given: Sequence[tuple[_Given, str]],
    *,
    need_packages: bool,
    catalog_version: str | None = None,
    mapped: int = 0,
    kev_products: Sequence[KevProduct] | None = None,
) -> tuple[ImportSummary, list[Advisory]]:
    """Merge every (given, where) with the ledger's advisories and append the new or
    changed ones in one transaction holding the write lock. Returns the summary and the
    advisories as they now are, in the order given."""
    now = utc_now()
    operator = operator_name()
    added = updated = unchanged = 0
    try:
        with ledger.write_transaction() as conn:
            current = _load(conn)
            pending: list[tuple[dict[str, Any], str]] = []
            result: list[Advisory] = []
            for item, where in given:
                existing = current.get(item.advisory_id)
                if kev_products is not None:
                    _map_packages(item, existing, kev_products)
                body = _merge(existing, item, where, need_packages=need_packages)
                if not _changed(existing, body):
                    unchanged += 1
                    assert existing is not None
                    result.append(existing)
                    continue
                if existing is None:
                    added += 1
                else:
                    updated += 1
                record = _record(body, now, operator)
                pending.append((record, item.advisory_id))
                made = _from_record(0, now, record["body"])
                assert made is not None
                current[item.advisory_id] = made
                result.append(made)
            if pending:
                seqs = ledger.append_locked(conn, [prepare(record) for record, _ in pending])
                by_id = {
                    advisory_id: seq for (_, advisory_id), seq in zip(pending, seqs, strict=True)
                }
                result = [_with_seq(a, by_id[a.advisory_id]) if a.seq == 0 else a for a in result]
    except (SQLAlchemyError, OSError) as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}"
        ) from bad
    summary = ImportSummary(added, updated, unchanged, mapped, catalog_version)
    return summary, result


def _with_seq(advisory: Advisory, seq: int) -> Advisory:
    data = advisory.as_dict()
    data["seq"] = seq
    return Advisory(**data)


def _map_packages(item: _Given, existing: Advisory | None, products: Sequence[KevProduct]) -> None:
    """A KEV entry's packages: the existing ones, plus the mapped packages (no fix known
    unless the existing advisory has one)."""
    packages: dict[str, str | None] = dict(existing.packages) if existing else {}
    for product in products:
        if product.matches(item.vendor_project or "", item.product or ""):
            for name in product.packages:
                packages.setdefault(name, None)
    item.packages = packages


# ------------------------------------------------------------------ adding


def _check_packages(packages: Mapping[str, str | None], where: str) -> dict[str, str | None]:
    checked: dict[str, str | None] = {}
    for name, fixed in packages.items():
        package = check_package_name(name, f"{where} package name")
        checked[package] = (
            None if fixed is None else check_version(fixed, f"{where} fixed version of {package}")
        )
    return checked


def add_advisory(
    ledger: Ledger,
    *,
    advisory_id: str,
    packages: Mapping[str, str | None] | None,
    severity: str | None,
    kev: bool | None = None,
    published: str | date | None = None,
    due_date: str | date | None = None,
    title: str | None = None,
    source: str | None = None,
) -> Advisory:
    """Record an advisory, merged with the existing advisory of the same id: the fields
    given replace its fields, the packages given are merged into its packages (a package
    mapped to None: no fixed version known). A new advisory needs a severity (a KEV one
    defaults to critical) and at least one package; ``published`` defaults to today (UTC);
    ``due_date`` only with ``kev``. ``source``: kev, vendor or manual (default: the
    existing advisory's, or manual).

    Appends one record and returns the new Advisory; appends nothing and returns the
    existing one when nothing would change. UserError (one line) for bad input.
    """
    where = "advisory"
    given = _Given(advisory_id=check_advisory_id(advisory_id))
    if source is not None:
        if source not in SOURCES:
            raise UserError(f"advisory source {shown(source)} is not one of {', '.join(SOURCES)}")
        given.source = source
    if packages is not None:
        given.packages = _check_packages(packages, where)
    if severity is not None:
        given.severity = _check_severity(severity, "severity")
    if kev is not None:
        given.kev = bool(kev)
    if published is not None:
        given.published = _date_text(published, "published date")
    if due_date is not None:
        given.due_date = _date_text(due_date, "due date")
    if title is not None:
        given.title = check_text(title, "title", max_len=MAX_TITLE)
    _, [advisory] = _apply(ledger, [(given, where)], need_packages=True)
    return advisory


# ------------------------------------------------------------------ files


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
    given: list[tuple[_Given, str]] = []
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
        given.append((item, where))
    mapped = sum(
        1
        for item, _ in given
        if any(p.matches(item.vendor_project or "", item.product or "") for p in products)
    )
    summary, _ = _apply(
        ledger,
        given,
        need_packages=False,
        catalog_version=version,
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
