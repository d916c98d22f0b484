"""Security advisories in the ledger: the model, reading them, and adding or merging them
by hand or from an import (milepost.patching.advisory_import reads CISA's KEV catalog and
vendors' advisory files; milepost.patching.debian_sync records Debian's uploads).

An advisory is a record of kind ``advisory`` (run_id and host null) whose body is::

    {"advisory_id": "CVE-2025-12345", "source": "kev" | "vendor" | "manual" | "debian",
     "title": str | None, "severity": "critical" | "high" | "medium" | "low",
     "kev": bool, "published": "YYYY-MM-DD", "due_date": "YYYY-MM-DD" | None,
     "packages": {"ruc-payment-gateway": "2.4.0" | None},
     "vendor_project": str | None, "product": str | None,
     "catalog_version": str | None, "recorded_by": str}

``packages`` maps each affected Debian package to the version that fixes it (None: no fix
known yet). ``due_date`` is the KEV catalog's dueDate (only a KEV advisory has one).

A Debian upload's advisory (id DEB-<source>-<version>) has four more fields: ``cves`` (the
CVE ids its changelog entry names), ``source_package``, ``urgency`` (the changelog's) and
``origin`` (the suite and archive, or the offline directory, it was read from). A CVE id
with no advisory of its own resolves to the Debian advisory of the earliest upload naming
it (:func:`resolve_advisory`).

Records are never updated: the newest ``advisory`` record of an id is the advisory. A new
record is appended only when something changed (recorded_by, catalog_version and origin
aside: ``catalog_version`` is the KEV catalog, and ``origin`` where it was read, when the
advisory last changed).

Every new or changed advisory of one addition or import is appended in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import cmp_to_key
from typing import TYPE_CHECKING, Any

from debian.debian_support import version_compare
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import UserError
from milepost.input_checks import CVE_ID, check_advisory_id, check_date, check_text, shown
from milepost.inventory.debian import check_package_name, check_version
from milepost.inventory.severities import SEVERITIES
from milepost.ledger.bodies import usable
from milepost.ledger.chain import utc_now
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.names import ADVISORY_SOURCES as SOURCES
from milepost.ledger.names import MAX_ADVISORY_PACKAGES as MAX_PACKAGES
from milepost.ledger.schema import records as T
from milepost.ledger.store import prepare
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
    "load_advisories",
    "resolve_advisory",
]

KIND = "advisory"
MAX_TITLE = 300
#: Body fields that do not make a new record by themselves.
NOT_COMPARED = ("recorded_by", "catalog_version", "origin")
#: The fields only a Debian upload's advisory has.
DEBIAN_FIELDS = ("cves", "source_package", "urgency", "origin")


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
    cves: tuple[str, ...] | None = None
    source_package: str | None = None
    urgency: str | None = None
    origin: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["packages"] = dict(self.packages)
        if self.cves is not None:
            data["cves"] = list(self.cves)
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
            **_debian_fields(self),
        }


def _debian_fields(advisory: Advisory | _Given) -> dict[str, Any]:
    """The Debian upload's fields that are set (an older advisory has none)."""
    found: dict[str, Any] = {}
    for key in DEBIAN_FIELDS:
        value = getattr(advisory, key)
        if value is not None:
            found[key] = list(value) if key == "cves" else value
    return found


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
    cves: list[str] | None = None
    source_package: str | None = None
    urgency: str | None = None
    origin: str | None = None


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
        cves=tuple(map(str, cves)) if isinstance(cves := body.get("cves"), list) else None,
        source_package=_opt_text(body.get("source_package")),
        urgency=_opt_text(body.get("urgency")),
        origin=_opt_text(body.get("origin")),
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
    """The advisory ``advisory_id`` names (a CVE id with no advisory of its own: the Debian
    upload that fixed it, see resolve_advisory); UserError if malformed or unknown."""
    wanted = check_advisory_id(advisory_id)
    found = resolve_advisory(load_advisories(ledger), wanted)
    if found is None:
        raise UserError(
            f"unknown advisory {wanted}: add it with `milepost advisory add` or import it"
        )
    return found


def _earlier(one: Advisory, other: Advisory) -> int:
    """Which of two uploads naming a CVE came first: the one published first; on the same
    day, the lower fixed version of a package both name (Debian ordering); then the id."""
    if one.published != other.published:
        return -1 if one.published < other.published else 1
    for name in sorted(set(one.packages) & set(other.packages)):
        mine, theirs = one.packages[name], other.packages[name]
        if mine and theirs and version_compare(mine, theirs):
            return version_compare(mine, theirs)
    return (one.advisory_id > other.advisory_id) - (one.advisory_id < other.advisory_id)


def resolve_advisory(advisories: Mapping[str, Advisory], advisory_id: str) -> Advisory | None:
    """The advisory ``advisory_id`` names: its own, or for a CVE id with no advisory of its
    own, the Debian advisory of the earliest upload naming that CVE (its fixed versions
    close it); None when there is neither. ``advisories``: load_advisories()."""
    own = advisories.get(advisory_id)
    if own is not None or not CVE_ID.fullmatch(advisory_id):
        return own
    naming = [
        a for a in advisories.values() if a.source == "debian" and advisory_id in (a.cves or ())
    ]
    return min(naming, key=cmp_to_key(_earlier)) if naming else None


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
        **{key: old[key] for key in DEBIAN_FIELDS if old.get(key) is not None},
        **_debian_fields(given),
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
