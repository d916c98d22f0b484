"""Recent software changes in plain words, from the ledger's ``package_change`` records.

Changes are grouped per run and system. A group says what it did in one or more lines:
"Software updated: ruc-payment-gateway 2.3.0 → 2.4.0" for the RUC software (``ruc-*``),
"Operating-system updates installed (12 packages)" for the rest, and "Rolled back after a
failed health check" for a package that changed and changed back in the run.

The records are read newest first through the (kind, recorded_at) index. Once ``limit``
groups are known, records of other groups are skipped, and reading stops a day (longer than
a run lasts) before the oldest of them began.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time
from milepost.ledger.schema import records as T
from milepost.reports.plain import count, parse_time, plain_date

if TYPE_CHECKING:
    from milepost.inventory.systems import System
    from milepost.ledger.book import Ledger

__all__ = ["RUC_PREFIX", "ChangeRow", "recent_changes"]

RUC_PREFIX = "ruc-"
DEFAULT_DAYS = 30
DEFAULT_LIMIT = 50
#: Longer than any run: records this much older than a group's newest belong elsewhere.
RUN_SPAN = timedelta(days=1)
STREAM = 1000
OTHER = "Other servers"


@dataclass(frozen=True)
class ChangeRow:
    at: str
    date_text: str
    system_key: str | None
    system: str
    text: str
    run_id: str | None
    hosts: list[str]


@dataclass
class _Package:
    """One package on one host in one group: its first from- and last to-version."""

    first_from: str | None
    last_to: str | None
    changes: int = 0


@dataclass
class _Group:
    run_id: str | None
    system_key: str | None
    newest: str
    packages: dict[tuple[str, str], _Package] = field(default_factory=dict)


def _version(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _describe(group: _Group) -> list[str]:
    """The group's lines: software updates, OS updates, rollbacks."""
    software: dict[str, set[tuple[str | None, str | None]]] = {}
    os_packages: set[str] = set()
    rolled: dict[str, set[str | None]] = {}
    for (_, package), change in sorted(group.packages.items()):
        if change.changes > 1 and change.last_to == change.first_from:
            rolled.setdefault(package, set()).add(change.first_from)
            continue
        if change.first_from == change.last_to:
            continue
        if package.startswith(RUC_PREFIX):
            software.setdefault(package, set()).add((change.first_from, change.last_to))
        else:
            os_packages.add(package)
    lines = []
    for package, pairs in sorted(software.items()):
        for before, after in sorted(pairs, key=lambda p: (p[0] or "", p[1] or "")):
            if before is None:
                lines.append(f"Software installed: {package} {after}")
            elif after is None:
                lines.append(f"Software removed: {package} {before}")
            else:
                lines.append(f"Software updated: {package} {before} → {after}")
    if os_packages:
        lines.append(f"Operating-system updates installed ({count(len(os_packages), 'package')})")
    if rolled:
        kept = ", ".join(
            f"{package} stays at {' / '.join(sorted(v or 'none' for v in versions))}"
            for package, versions in sorted(rolled.items())
        )
        lines.append(f"Rolled back after a failed health check ({kept})")
    return lines


def recent_changes(
    ledger: Ledger,
    systems: Mapping[str, System],
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    limit: int = DEFAULT_LIMIT,
) -> list[ChangeRow]:
    """The changes of the last ``days`` days, newest first, at most ``limit`` lines."""
    system_of: dict[str, str] = {}
    for system_key, member in systems.items():
        for host in member.hosts:
            system_of.setdefault(host, system_key)
    since = format_time(now - timedelta(days=days))
    groups: dict[tuple[str | None, str | None], _Group] = {}
    stop_before: str | None = None
    with ledger.read_transaction() as conn:
        result = conn.execute(
            select(T.c.seq, T.c.run_id, T.c.host, T.c.recorded_at, T.c.body)
            .where(T.c.kind == "package_change", T.c.recorded_at >= since)
            .order_by(T.c.recorded_at.desc(), T.c.seq.desc())
            .execution_options(yield_per=STREAM)
        )
        try:
            for seq, run_id, host, recorded_at, text in result:
                if stop_before is not None and recorded_at < stop_before:
                    break
                if host is None:
                    continue
                body = usable(seq, "package_change", text)
                if body is None:
                    continue
                key = (run_id if run_id is not None else recorded_at[:10], system_of.get(host))
                group = groups.get(key)
                if group is None:
                    if len(groups) >= limit:
                        continue  # enough groups: only their own older records matter
                    group = groups[key] = _Group(run_id, key[1], recorded_at)
                    if len(groups) == limit:
                        stop_before = format_time(parse_time(recorded_at) - RUN_SPAN)
                package = body["package"]
                # Newest first: the first record seen holds the last to-version.
                item = group.packages.setdefault(
                    (host, package), _Package(None, _version(body.get("to_version")))
                )
                item.first_from = _version(body.get("from_version"))
                item.changes += 1
        finally:
            result.close()
    rows: list[ChangeRow] = []
    for group in sorted(groups.values(), key=lambda g: g.newest, reverse=True):
        owner = systems.get(group.system_key) if group.system_key else None
        hosts = sorted({host for host, _ in group.packages})
        for line in _describe(group):
            rows.append(
                ChangeRow(
                    at=group.newest,
                    date_text=plain_date(group.newest),
                    system_key=group.system_key,
                    system=owner.name if owner else OTHER,
                    text=line,
                    run_id=group.run_id,
                    hosts=hosts,
                )
            )
    return rows[:limit]
