"""Exposure of hosts to advisories, computed from the ledger, never stored.

A host is exposed to an advisory when it has one of the advisory's packages installed at a
version older than the fixed version (Debian version ordering, python-debian), or when no
fixed version is known yet. What is installed comes from the ledger: the host's newest
``package_facts`` record with the ``package_change`` records after it applied.

Every exposed (host, advisory) has a due date from the patch policy (milepost.patching.policy):
the KEV catalog's due date, else the advisory's published date plus the days for its
severity, the host's own (stricter) policy first. It is overdue from the day after.

A patch exception (record ``patch_exception``) covers named hosts (or ``*``) for one
advisory until its expiry date; from that date on the host shows as overdue again.

patch_exception body: exception_id ("E-" + 8 hex), advisory_id, hosts, expires
(YYYY-MM-DD, UTC), reason, compensating_control, added_by.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from debian.debian_support import version_compare
from sqlalchemy import select

from milepost.errors import UserError
from milepost.input_checks import check_text, shown
from milepost.ledger.bodies import usable
from milepost.ledger.schema import records as T
from milepost.operator import operator_name
from milepost.patching.advisories import get_advisory, load_advisories

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.patching.advisories import Advisory
    from milepost.patching.policy import PatchPolicy, PatchSettings

EXCEPTION_KIND = "patch_exception"
STATUSES = ("exposed", "excepted", "fixed")


def today() -> date:
    return datetime.now(UTC).date()


def is_fixed(installed: str, fixed: str | None) -> bool:
    """Is ``installed`` at or past ``fixed`` (Debian ordering)? No fixed version: no."""
    return fixed is not None and version_compare(installed, fixed) >= 0


def exposed_packages(
    fixed_versions: Mapping[str, str | None], installed: Mapping[str, str]
) -> dict[str, str | None]:
    """The packages of ``fixed_versions`` that are installed and not fixed: {name: fixed}."""
    return {
        name: fixed
        for name, fixed in fixed_versions.items()
        if name in installed and not is_fixed(installed[name], fixed)
    }


@dataclass(frozen=True)
class PatchException:
    exception_id: str
    advisory_id: str
    hosts: tuple[str, ...]
    expires: str
    reason: str
    compensating_control: str
    added_by: str | None
    added_at: str

    def covers(self, host: str, advisory_id: str, on: date) -> bool:
        return (
            advisory_id == self.advisory_id
            and ("*" in self.hosts or host in self.hosts)
            and on < date.fromisoformat(self.expires)
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        return data


@dataclass(frozen=True)
class Exposure:
    """One package of one advisory on one host."""

    host: str
    advisory_id: str
    package: str
    installed: str
    fixed: str | None
    status: str
    severity: str
    kev: bool
    due: str
    days_left: int
    overdue: bool
    closed_by: str | None = None
    closed_at: str | None = None
    exception_id: str | None = None
    exception_expires: str | None = None
    #: The CVE ids the advisory names (a Debian upload's); empty for others.
    cves: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cves"] = list(self.cves)
        return data


def installed_packages(
    ledger: Ledger, hosts: Collection[str] | None = None
) -> dict[str, dict[str, str]]:
    """{host: {package: version}} from each host's newest usable package facts and the
    usable package changes after them (record_checks: a malformed record is skipped with a
    warning). Hosts the ledger has no usable package facts for are left out."""
    with ledger.read_transaction() as conn:
        known = conn.scalars(
            select(T.c.host).where(T.c.kind == "package_facts").group_by(T.c.host)
        ).all()
        found: dict[str, dict[str, str]] = {}
        for host in known:
            if host is None or (hosts is not None and host not in hosts):
                continue
            newest = conn.execute(
                select(T.c.seq, T.c.body)
                .where(T.c.host == host, T.c.kind == "package_facts")
                .order_by(T.c.seq.desc())
            )
            seq, body = 0, None
            for seq, text in newest:
                body = usable(seq, "package_facts", text)
                if body is not None:
                    break
            newest.close()
            if body is None:
                continue
            packages = {str(k): str(v) for k, v in body["packages"].items()}
            later = conn.execute(
                select(T.c.seq, T.c.body)
                .where(T.c.host == host, T.c.kind == "package_change", T.c.seq > seq)
                .order_by(T.c.seq)
            )
            for change_seq, text in later:
                change = usable(change_seq, "package_change", text)
                if change is None:
                    continue
                name, version = change["package"], change.get("to_version")
                if version in (None, ""):
                    packages.pop(name, None)
                else:
                    packages[name] = str(version)
            found[host] = packages
    return found


def _closing_change(
    ledger: Ledger, host: str, package: str, fixed: str
) -> tuple[str | None, str | None]:
    """(run_id, recorded_at) of the newest package change that brought ``package`` on
    ``host`` from an exposed version to a fixed one, or (None, None)."""
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.run_id, T.c.recorded_at, T.c.body)
            .where(T.c.host == host, T.c.kind == "package_change")
            .order_by(T.c.seq.desc())
        )
        for seq, run_id, recorded_at, text in rows:
            body = usable(seq, "package_change", text)
            if body is None or body["package"] != package or not body.get("to_version"):
                continue
            before = body.get("from_version")
            if is_fixed(str(body["to_version"]), fixed) and (
                not before or not is_fixed(str(before), fixed)
            ):
                return run_id, recorded_at
    return None, None


def load_exceptions(ledger: Ledger) -> list[PatchException]:
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.recorded_at, T.c.body)
            .where(T.c.kind == EXCEPTION_KIND)
            .order_by(T.c.seq)
        ).all()
    found = []
    for seq, recorded_at, text in rows:
        body = usable(seq, EXCEPTION_KIND, text)
        if body is None:
            continue
        found.append(
            PatchException(
                exception_id=str(body.get("exception_id")),
                advisory_id=str(body.get("advisory_id")),
                hosts=tuple(body["hosts"]),
                expires=str(body.get("expires")),
                reason=str(body.get("reason")),
                compensating_control=str(body.get("compensating_control")),
                added_by=body.get("added_by"),
                added_at=recorded_at,
            )
        )
    return found


def add_exception(
    ledger: Ledger,
    *,
    advisory_id: str,
    hosts: Sequence[str],
    expires: date,
    reason: str,
    compensating_control: str,
    known_hosts: Collection[str],
    on: date | None = None,
) -> PatchException:
    """Append a patch_exception record. UserError (nothing appended) for an unknown
    advisory or host, an expiry not in the future, an empty reason or control."""

    advisory = get_advisory(ledger, advisory_id)
    names = list(dict.fromkeys(h.strip() for h in hosts if h.strip()))
    if not names:
        raise UserError("an exception needs --host NAME (repeatable) or --host '*' for every host")
    unknown = [h for h in names if h != "*" and h not in known_hosts]
    if unknown:
        raise UserError(
            f"unknown host {shown(unknown[0])}: hosts must be in the inventory"
            " (see `ansible-inventory --graph`)"
        )
    if expires <= (on or today()):
        raise UserError(f"--expires {expires.isoformat()} is not in the future: give a later date")
    why = check_text(reason, "--reason", max_len=2000)
    control = check_text(compensating_control, "--control", max_len=2000)
    exception_id = "E-" + secrets.token_hex(4)
    record = {
        "kind": EXCEPTION_KIND,
        "run_id": None,
        "host": None,
        "body": {
            "exception_id": exception_id,
            "advisory_id": advisory.advisory_id,
            "hosts": names,
            "expires": expires.isoformat(),
            "reason": why,
            "compensating_control": control,
            "added_by": operator_name(),
        },
    }
    ledger.append([record])
    return next(e for e in reversed(load_exceptions(ledger)) if e.exception_id == exception_id)


def _due(advisory: Advisory, policy: PatchPolicy) -> date:
    return policy.due(
        severity=advisory.severity,
        kev=advisory.kev,
        published=date.fromisoformat(advisory.published),
        kev_due=date.fromisoformat(advisory.due_date) if advisory.due_date else None,
    )


def exposures(
    ledger: Ledger,
    settings: PatchSettings,
    *,
    advisories: Mapping[str, Advisory] | None = None,
    advisory_id: str | None = None,
    hosts: Collection[str] | None = None,
    on: date | None = None,
) -> list[Exposure]:
    """Every (host, advisory, package) where the host has an affected package installed,
    fixed or not, sorted by host, advisory and package."""

    day = on or today()
    known = dict(advisories) if advisories is not None else load_advisories(ledger)
    if advisory_id is not None:
        known = {advisory_id: known[advisory_id]} if advisory_id in known else {}
    relevant = {aid: a for aid, a in known.items() if a.packages}
    if not relevant:
        return []
    granted = load_exceptions(ledger)
    found: list[Exposure] = []
    for host, installed in sorted(installed_packages(ledger, hosts).items()):
        policy = settings.for_host(host)
        for aid, advisory in sorted(relevant.items()):
            due = _due(advisory, policy)
            for package, fixed in sorted(advisory.packages.items()):
                if package not in installed:
                    continue
                version = installed[package]
                status, closed_by, closed_at, cover = "exposed", None, None, None
                if is_fixed(version, fixed):
                    status = "fixed"
                    assert fixed is not None
                    closed_by, closed_at = _closing_change(ledger, host, package, fixed)
                else:
                    cover = next((e for e in reversed(granted) if e.covers(host, aid, day)), None)
                    if cover is not None:
                        status = "excepted"
                days_left = (due - day).days
                found.append(
                    Exposure(
                        host=host,
                        advisory_id=aid,
                        package=package,
                        installed=version,
                        fixed=fixed,
                        status=status,
                        severity=advisory.severity,
                        kev=advisory.kev,
                        due=due.isoformat(),
                        days_left=days_left,
                        overdue=status == "exposed" and days_left < 0,
                        closed_by=closed_by,
                        closed_at=closed_at,
                        exception_id=cover.exception_id if cover else None,
                        exception_expires=cover.expires if cover else None,
                        cves=tuple(advisory.cves or ()),
                    )
                )
    return found


def open_hosts(items: Iterable[Exposure]) -> list[str]:
    """Hosts with at least one exposed (not fixed, not excepted) package, sorted."""
    return sorted({e.host for e in items if e.status == "exposed"})
