"""Questions the ledger answers: runs, one run, one host.

Every query walks an index and stops early; none scans the table. At 1,000,000 task
results (bench/ledger_queries.py) they answer in milliseconds:

- runs(): run_started records through (kind, recorded_at), newest first; with ``host``, the
  host's records through (host, seq) backwards, collecting distinct runs until ``limit``.
- per-host counts: from the run_ended record's "hosts" summary (written at the end of the
  run), else from the run's task_result records through (kind, run_id).
- host(): newest package_facts and package_change records through (host, kind, seq).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from milepost.errors import UserError
from milepost.ledger.chain import format_time, load_body
from milepost.ledger.runs import RUN_KINDS
from milepost.ledger.schema import records as T
from milepost.ledger.store import TASK_STATUSES, Store, add_status

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

CHUNK = 500
PACKAGE_CHANGES_SHOWN = 50


def _time(value: datetime | str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return format_time(value)
    except (TypeError, ValueError):
        raise UserError(f"{what} must be an ISO-8601 date or time, not {value!r}") from None


def _start_row(conn: Connection, run_id: str) -> Row[Any, Any, Any, Any] | None:
    return conn.execute(
        select(T.c.seq, T.c.run_id, T.c.recorded_at, T.c.body)
        .where(T.c.kind == "run_started", T.c.run_id == run_id)
        .order_by(T.c.seq)
        .limit(1)
    ).first()


def _starts(
    conn: Connection, since: str | None, kind: str | None, limit: int | None
) -> list[tuple[str, str, dict[str, Any]]]:
    query = select(T.c.run_id, T.c.recorded_at, T.c.body).where(T.c.kind == "run_started")
    if since is not None:
        query = query.where(T.c.recorded_at >= since)
    query = query.order_by(T.c.recorded_at.desc()).execution_options(yield_per=CHUNK)
    found: list[tuple[str, str, dict[str, Any]]] = []
    result = conn.execute(query)
    try:
        for run_id, recorded_at, body_text in result:
            body = load_body(body_text)
            if run_id is None or (kind is not None and body.get("kind") != kind):
                continue
            found.append((run_id, recorded_at, body))
            if limit is not None and len(found) >= limit:
                break
    finally:
        result.close()
    return found


def _starts_for_host(
    conn: Connection, host: str, since: str | None, kind: str | None, limit: int | None
) -> list[tuple[str, str, dict[str, Any]]]:
    query = select(T.c.run_id).where(T.c.host == host)
    if since is not None:
        first = conn.scalar(
            select(func.min(T.c.seq)).where(T.c.kind == "run_started", T.c.recorded_at >= since)
        )
        if first is None:
            return []
        query = query.where(T.c.seq >= first)
    query = query.order_by(T.c.seq.desc()).execution_options(yield_per=CHUNK)
    seen: set[str] = set()
    found: list[tuple[str, str, dict[str, Any]]] = []
    result = conn.execute(query)
    try:
        for (run_id,) in result:
            if run_id is None or run_id in seen:
                continue
            seen.add(run_id)
            start = _start_row(conn, run_id)
            if start is None or (since is not None and start.recorded_at < since):
                continue
            body = load_body(start.body)
            if kind is not None and body.get("kind") != kind:
                continue
            found.append((run_id, start.recorded_at, body))
            if limit is not None and len(found) >= limit:
                break
    finally:
        result.close()
    found.sort(key=lambda item: item[1], reverse=True)
    return found


def _summary(
    run_id: str,
    recorded_at: str,
    start: dict[str, Any],
    end: dict[str, Any] | None,
    hosts: dict[str, dict[str, int]],
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "playbook": start.get("playbook"),
        "kind": start.get("kind"),
        "operator": start.get("operator"),
        "controller": start.get("controller"),
        "git_commit": start.get("git_commit"),
        "limit": start.get("limit"),
        "check_mode": bool(start.get("check_mode", False)),
        "started_at": start.get("started_at") or recorded_at,
        "ended_at": end.get("ended_at") if end else None,
        "status": end.get("status", "unknown") if end else "running",
        "reason": end.get("reason") if end else None,
        "hosts": {
            str(name): {status: _count(hosts[name].get(status)) for status in TASK_STATUSES}
            for name in sorted(hosts, key=str)
            if isinstance(hosts[name], dict)
        },
    }


def _count(value: Any) -> int:
    """A per-host task count as a record gives it; what is not a count (the body is
    untrusted input, docs/SAFETY.md) counts 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _assemble(
    conn: Connection, starts: list[tuple[str, str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    ids = [run_id for run_id, _, _ in starts]
    ends: dict[str, dict[str, Any]] = {}
    for offset in range(0, len(ids), CHUNK):
        rows = conn.execute(
            select(T.c.run_id, T.c.recorded_at, T.c.body)
            .where(T.c.kind == "run_ended", T.c.run_id.in_(ids[offset : offset + CHUNK]))
            .order_by(T.c.seq)
        )
        for run_id, recorded_at, body_text in rows:
            if run_id not in ends:
                body = load_body(body_text)
                body.setdefault("ended_at", recorded_at)
                ends[run_id] = body
    missing = [rid for rid in ids if not isinstance(ends.get(rid, {}).get("hosts"), dict)]
    counts = Store.host_counts(conn, missing) if missing else {}
    out = []
    for run_id, recorded_at, start in starts:
        end = ends.get(run_id)
        hosts = counts.get(run_id) or (end or {}).get("hosts") or {}
        if not isinstance(hosts, dict):
            hosts = {}
        out.append(_summary(run_id, recorded_at, start, end, hosts))
    return out


def _runs(
    conn: Connection,
    host: str | None,
    since: datetime | str | None,
    kind: str | None,
    limit: int | None,
) -> list[dict[str, Any]]:
    since_text = _time(since, "since")
    if kind is not None and kind not in RUN_KINDS:
        raise UserError(f"run kind must be one of {', '.join(RUN_KINDS)}, not {kind!r}")
    if limit is not None and limit <= 0:
        limit = None
    if host is not None:
        starts = _starts_for_host(conn, host, since_text, kind, limit)
    else:
        starts = _starts(conn, since_text, kind, limit)
    return _assemble(conn, starts)


def runs(
    ledger: Store,
    host: str | None = None,
    since: datetime | str | None = None,
    kind: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs newest first: run_id, playbook, kind, operator, controller, git_commit, limit,
    check_mode, started_at, ended_at, status (running|successful|failed|aborted), reason,
    hosts {host: {ok, changed, failed, unreachable, skipped}}.

    ``host``: only runs with records for that host; ``since``: started at or after (naive
    times are UTC); ``kind``: scheduled|manual|emergency|drift|remediation|qc; ``limit``: at
    most that many (None or 0: all).
    """
    with ledger.read_transaction() as conn:
        return _runs(conn, host, since, kind, limit)


def run(ledger: Store, run_id: str) -> dict[str, Any]:
    """One run: the runs() fields plus start and end bodies, task_results (in order) and
    records (every other record of the run). UserError for an unknown run id."""
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.kind, T.c.host, T.c.recorded_at, T.c.body)
            .where(T.c.run_id == run_id)
            .order_by(T.c.seq)
        ).all()
    if not rows:
        raise UserError(f"no run {run_id!r} in the ledger: `milepost ledger runs` lists them")
    start: dict[str, Any] | None = None
    started_at = rows[0].recorded_at
    end: dict[str, Any] | None = None
    counts: dict[str, dict[str, int]] = {}
    results: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for seq, kind, host, recorded_at, body_text in rows:
        body = load_body(body_text)
        if kind == "run_started" and start is None:
            start, started_at = body, recorded_at
        elif kind == "run_ended" and end is None:
            end = body
            end.setdefault("ended_at", recorded_at)
        elif kind == "task_result":
            add_status(counts, host, body)
            results.append({**body, "seq": seq, "host": host, "recorded_at": recorded_at})
        else:
            others.append(
                {"seq": seq, "kind": kind, "host": host, "recorded_at": recorded_at, "body": body}
            )
    detail = _summary(run_id, started_at, start or {}, end, counts)
    detail.update(start=start, end=end, task_results=results, records=others)
    return detail


def host(ledger: Store, name: str, limit: int = 20) -> dict[str, Any]:
    """A host: its ``limit`` most recent runs, its current packages (the newest
    package_facts record with later package_change records applied), and its recent
    package changes. UserError if the ledger has no record for the host."""
    with ledger.read_transaction() as conn:
        if conn.execute(select(T.c.seq).where(T.c.host == name).limit(1)).first() is None:
            raise UserError(
                f"no records for host {name!r} in the ledger: check the name"
                " (`milepost ledger runs` lists runs)"
            )
        recent = _runs(conn, name, None, None, limit)
        facts = conn.execute(
            select(T.c.seq, T.c.recorded_at, T.c.body)
            .where(T.c.host == name, T.c.kind == "package_facts")
            .order_by(T.c.seq.desc())
            .limit(1)
        ).first()
        change_rows = conn.execute(
            select(T.c.seq, T.c.run_id, T.c.recorded_at, T.c.body)
            .where(T.c.host == name, T.c.kind == "package_change")
            .order_by(T.c.seq.desc())
            .limit(PACKAGE_CHANGES_SHOWN)
        ).all()
        newer: list[str] = (
            list(
                conn.scalars(
                    select(T.c.body)
                    .where(T.c.host == name, T.c.kind == "package_change", T.c.seq > facts.seq)
                    .order_by(T.c.seq)
                )
            )
            if facts is not None
            else []
        )
    packages: dict[str, str] = {}
    if facts is not None:
        listed = load_body(facts.body).get("packages")
        if isinstance(listed, dict):
            packages = {str(k): str(v) for k, v in listed.items()}
    changes = []
    for seq, run_id, recorded_at, body_text in change_rows:
        body = load_body(body_text)
        changes.append(
            {
                "seq": seq,
                "run_id": run_id,
                "recorded_at": recorded_at,
                "package": body.get("package"),
                "from_version": body.get("from_version"),
                "to_version": body.get("to_version"),
            }
        )
    if facts is None:
        # No inventory of packages yet: what the changes say is all we know.
        newer = [json.dumps(c) for c in reversed(changes)]
    for body_text in newer:
        body = load_body(body_text)
        package, version = body.get("package"), body.get("to_version")
        if not isinstance(package, str):
            continue
        if version in (None, ""):
            packages.pop(package, None)
        else:
            packages[package] = str(version)
    return {
        "host": name,
        "runs": recent,
        "packages": dict(sorted(packages.items())),
        "packages_as_of": facts.recorded_at if facts is not None else None,
        "package_changes": changes,
    }
