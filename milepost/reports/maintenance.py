"""Maintenance runs per system, from the ledger: the last one and its outcome, and the ones
under way.

Only runs that can change something count as maintenance: scheduled, manual, emergency and
remediation runs outside check mode (a drift check or a QC run changes nothing customers
could notice). Runs are read newest first through the (kind, recorded_at) index, a page at a
time; a run's hosts come from its run_ended summary, and only for a run without one from its
own records (the host column alone, through the run_id index). Reading stops as soon as
every system has its last run and the runs are older than the under-way horizon.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time
from milepost.ledger.schema import records as T
from milepost.reports.plain import plain_date, plain_time

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = [
    "MAINTENANCE_KINDS",
    "UNDER_WAY_HOURS",
    "LastMaintenance",
    "RunFacts",
    "SystemRuns",
    "rolled_back",
    "system_runs",
]

MAINTENANCE_KINDS = frozenset({"scheduled", "manual", "emergency", "remediation"})
#: A run without an end, started this recently, is under way; older ones did not finish.
UNDER_WAY_HOURS = 12
PAGE = 200
BAD = ("failed", "unreachable")


@dataclass(frozen=True)
class RunFacts:
    """What the dashboard needs of one run (no task results)."""

    run_id: str
    kind: str
    started_at: str
    #: successful | failed | aborted | running (no run_ended record)
    status: str
    #: {host: {ok, changed, failed, unreachable, skipped}}; empty counts for an open run.
    hosts: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class LastMaintenance:
    run_id: str
    started_at: str
    date_text: str
    time_text: str
    #: successful | failed | rolled-back | aborted | running | unfinished
    result: str
    outcome: str


@dataclass
class SystemRuns:
    """{system key: its newest maintenance run} and {system key: a run under way}."""

    last: dict[str, RunFacts] = field(default_factory=dict)
    under_way: dict[str, RunFacts] = field(default_factory=dict)


def _starts(conn: Connection) -> Generator[list[tuple[str, str, dict[str, Any]]], None, None]:
    """run_started records, newest first, a page at a time (streamed, as ledger.queries
    does)."""
    result = conn.execute(
        select(T.c.seq, T.c.run_id, T.c.recorded_at, T.c.body)
        .where(T.c.kind == "run_started")
        .order_by(T.c.recorded_at.desc())
        .execution_options(yield_per=PAGE)
    )
    try:
        page: list[tuple[str, str, dict[str, Any]]] = []
        for seq, run_id, recorded_at, text in result:
            body = usable(seq, "run_started", text) if run_id is not None else None
            if body is None:
                continue
            page.append((run_id, recorded_at, body))
            if len(page) >= PAGE:
                yield page
                page = []
        if page:
            yield page
    finally:
        result.close()


def _ends(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not run_ids:
        return {}
    found: dict[str, dict[str, Any]] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.run_id, T.c.body)
        .where(T.c.kind == "run_ended", T.c.run_id.in_(run_ids))
        .order_by(T.c.seq)
    )
    for seq, run_id, text in rows:
        if run_id not in found:
            body = usable(seq, "run_ended", text)
            if body is not None:
                found[run_id] = body
    return found


def _hosts_of(conn: Connection, run_id: str) -> dict[str, dict[str, int]]:
    rows = conn.scalars(
        select(T.c.host).where(T.c.run_id == run_id, T.c.host.is_not(None)).distinct()
    )
    return {str(host): {} for host in rows}


def _counts(value: Any) -> dict[str, dict[str, int]]:
    if not isinstance(value, dict):
        return {}
    found: dict[str, dict[str, int]] = {}
    for host, counts in value.items():
        if isinstance(counts, dict):
            found[str(host)] = {
                str(k): int(v) for k, v in counts.items() if isinstance(v, int | float)
            }
    return found


def system_runs(
    ledger: Ledger, systems: Mapping[str, Collection[str]], now: datetime
) -> SystemRuns:
    """For each system ({key: hosts}): its newest maintenance run, and a maintenance run
    without an end started within UNDER_WAY_HOURS of ``now`` that touches its hosts."""
    horizon = format_time(now - timedelta(hours=UNDER_WAY_HOURS))
    found = SystemRuns()
    wanted = {key: set(hosts) for key, hosts in systems.items() if hosts}
    with ledger.read_transaction() as conn:
        pages = _starts(conn)
        try:
            for page in pages:
                ends = _ends(conn, [run_id for run_id, _, _ in page])
                for run_id, recorded_at, start in page:
                    kind = str(start.get("kind") or "")
                    if kind not in MAINTENANCE_KINDS or start.get("check_mode"):
                        continue
                    end = ends.get(run_id)
                    hosts = _counts(end.get("hosts")) if end else {}
                    if not hosts:
                        hosts = _hosts_of(conn, run_id)
                    facts = RunFacts(
                        run_id=run_id,
                        kind=kind,
                        started_at=str(start.get("started_at") or recorded_at),
                        status=str(end.get("status") or "unknown") if end else "running",
                        hosts=hosts,
                    )
                    for key, members in wanted.items():
                        if not members.intersection(hosts):
                            continue
                        found.last.setdefault(key, facts)
                        if end is None and recorded_at >= horizon:
                            found.under_way.setdefault(key, facts)
                oldest = page[-1][1] if page else horizon
                if len(found.last) == len(wanted) and oldest < horizon:
                    break
        finally:
            pages.close()
    return found


def rolled_back(ledger: Ledger, run_id: str) -> dict[str, dict[str, str | None]]:
    """{host: {package: the version it was put back to}} for the packages of ``run_id``
    that changed and changed back in the run (a rollback)."""
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.host, T.c.body)
            .where(T.c.kind == "package_change", T.c.run_id == run_id)
            .order_by(T.c.seq)
        ).all()
    first: dict[tuple[str, str], Any] = {}
    back: dict[str, dict[str, str | None]] = {}
    for seq, host, text in rows:
        body = usable(seq, "package_change", text)
        if body is None:
            continue
        key = (str(host), str(body.get("package")))
        if key in first and body.get("to_version") == first[key]:
            back.setdefault(key[0], {})[key[1]] = first[key]
        first.setdefault(key, body.get("from_version"))
    return back


def last_maintenance(
    ledger: Ledger, run: RunFacts, hosts: Collection[str], now: datetime
) -> LastMaintenance:
    """The run as a system with ``hosts`` saw it, in words."""
    horizon = format_time(now - timedelta(hours=UNDER_WAY_HOURS))
    mine = {h: c for h, c in run.hosts.items() if h in hosts}
    failed = [h for h, c in mine.items() if any(c.get(s) for s in BAD)]
    if run.status == "running":
        if run.started_at >= horizon:
            result, outcome = "running", "In progress"
        else:
            result, outcome = "unfinished", "Did not finish: no end was recorded"
    elif failed:
        undone = set(rolled_back(ledger, run.run_id)).intersection(failed)
        if undone:
            result = "rolled-back"
            outcome = "Did not go through: the update was undone and the previous version restored"
        else:
            result, outcome = "failed", "Did not complete: a problem was found"
    elif run.status == "aborted":
        result, outcome = "aborted", "Stopped before it finished"
    else:
        result, outcome = "successful", "Completed successfully"
    return LastMaintenance(
        run_id=run.run_id,
        started_at=run.started_at,
        date_text=plain_date(run.started_at),
        time_text=plain_time(run.started_at),
        result=result,
        outcome=outcome,
    )
