"""Runs in the ledger: record builders, and closing runs whose writer died.

A run is two records, never an update: ``run_started`` and later ``run_ended``.

run_started body: playbook, kind (scheduled|manual|emergency|drift|remediation|qc), operator,
controller (hostname), git_commit, limit, check_mode, started_at, pid, pid_started (the
process start time from /proc/<pid>/stat, so a reused pid is not taken for the writer).

run_ended body: status (successful|failed|aborted), ended_at, reason, hosts
({host: {ok, changed, failed, unreachable, skipped}}, added by Store.append if absent).

task_result body (written by the callback): status (ok|changed|failed|unreachable|skipped),
task, duration (seconds), summary (redacted), plus whatever else the callback keeps.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import UserError
from milepost.ledger.chain import format_time, load_body, utc_now
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.names import RUN_KINDS as RUN_KINDS
from milepost.ledger.names import RUN_STATUSES as RUN_STATUSES
from milepost.ledger.schema import records as T
from milepost.ledger.store import TASK_STATUSES, prepare

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.store import Store

STALE_REASON = "writer process gone"


def new_run_id() -> str:
    """A run id that sorts by start time: 20250102T030405Z-1a2b3c4d."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields from field 3 (state) on, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces and parentheses.
    return stat[stat.rfind(")") + 2 :].split()


def process_start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or None."""
    fields = _proc_stat(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])
    except ValueError:
        return None


def process_alive(pid: int, started: int | None = None) -> bool:
    """Is ``pid`` running (not a zombie), and (given ``started``) the same process?"""
    if pid <= 0:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        if os.path.isdir("/proc/self"):
            return False
        try:  # no /proc: ask the kernel
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields and fields[0] in ("Z", "X"):
        return False
    if started is not None:
        return process_start_time(pid) == started
    return True


def run_started(
    *,
    playbook: str,
    kind: str = "manual",
    run_id: str | None = None,
    operator: str | None = None,
    identity: dict[str, str] | None = None,
    controller: str | None = None,
    git_commit: str | None = None,
    limit: str | None = None,
    check_mode: bool = False,
    pid: int | None = None,
    started_at: str | None = None,
    extra_vars: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run_started record for this process (pid, start time, hostname filled in).
    extra_vars: the run's extra vars, names always, values already redacted."""
    if kind not in RUN_KINDS:
        raise UserError(f"run kind must be one of {', '.join(RUN_KINDS)}, not {kind!r}")
    pid = os.getpid() if pid is None else pid
    if operator is None:
        try:
            operator = getpass.getuser()
        except (KeyError, OSError):
            operator = str(os.getuid())
    stamp = format_time(started_at) if started_at else utc_now()
    return {
        "kind": "run_started",
        "run_id": run_id or new_run_id(),
        "host": None,
        "recorded_at": stamp,
        "body": {
            "playbook": playbook,
            "kind": kind,
            "operator": operator,
            "controller": controller or socket.gethostname(),
            "git_commit": git_commit,
            "limit": limit,
            "check_mode": bool(check_mode),
            "started_at": stamp,
            "pid": pid,
            "pid_started": process_start_time(pid),
            "extra_vars": dict(extra_vars or {}),
            # How the operator is known (milepost.ansible.records.run_identity).
            "identity": dict(identity or {"source": "self-declared"}),
        },
    }


def run_ended(run_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """A run_ended record (the ledger adds per-host counts when it is appended)."""
    if status not in RUN_STATUSES:
        raise UserError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
    stamp = utc_now()
    return {
        "kind": "run_ended",
        "run_id": run_id,
        "host": None,
        "recorded_at": stamp,
        "body": {"status": status, "ended_at": stamp, "reason": reason},
    }


def task_result(
    run_id: str,
    host: str,
    task: str,
    status: str,
    duration: float | None = None,
    summary: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A task_result record (the caller has already redacted ``summary`` and ``extra``)."""
    if status not in TASK_STATUSES:
        raise UserError(f"task status must be one of {', '.join(TASK_STATUSES)}, not {status!r}")
    body = {"task": task, "status": status, "duration": duration, "summary": summary, **extra}
    return {"kind": "task_result", "run_id": run_id, "host": host, "body": body}


def package_change(
    run_id: str | None, host: str, package: str, from_version: str | None, to_version: str | None
) -> dict[str, Any]:
    """A package_change record (to_version None: removed; from_version None: installed)."""
    body = {"package": package, "from_version": from_version, "to_version": to_version}
    return {"kind": "package_change", "run_id": run_id, "host": host, "body": body}


def package_facts(run_id: str | None, host: str, packages: Mapping[str, str]) -> dict[str, Any]:
    """A package_facts record: every installed package and its version on ``host``."""
    return {
        "kind": "package_facts",
        "run_id": run_id,
        "host": host,
        "body": {"packages": dict(packages)},
    }


def open_runs(
    conn: Connection, run_ids: list[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(run_id, run_started body) of every run without a run_ended record."""
    started = T.alias("started")
    ended = T.alias("ended")
    query = select(started.c.run_id, started.c.body).where(
        started.c.kind == "run_started",
        started.c.run_id.is_not(None),
        ~exists().where(ended.c.kind == "run_ended", ended.c.run_id == started.c.run_id),
    )
    if run_ids is not None:
        query = query.where(started.c.run_id.in_(run_ids))
    found: list[tuple[str, dict[str, Any]]] = []
    for run_id, body in conn.execute(query):
        found.append((run_id, load_body(body)))
    return found


def writer_gone(body: Mapping[str, Any], hostname: str | None = None) -> bool:
    """Is the process that wrote this run_started gone (or replaced by another)?

    Only processes on this controller can be checked; elsewhere the answer is no.
    """
    if body.get("controller") != (hostname or socket.gethostname()):
        return False
    pid, started = body.get("pid"), body.get("pid_started")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return False
    return not process_alive(pid, started if isinstance(started, int) else None)


def close_stale_runs(ledger: Store) -> list[str]:
    """Append run_ended (aborted, "writer process gone") for every open run whose writer
    process on this controller is gone or was replaced; return their run ids.

    Candidates are found without the write lock and checked again under it, so two
    commands racing never close a run twice.
    """
    with ledger.read_transaction() as conn:
        candidates = open_runs(conn)
    hostname = socket.gethostname()
    stale = [run_id for run_id, body in candidates if writer_gone(body, hostname)]
    if not stale:
        return []
    try:
        with ledger.write_transaction() as conn:
            still_open = [run_id for run_id, _ in open_runs(conn, stale)]
            if still_open:
                ledger.append_locked(
                    conn, [prepare(run_ended(rid, "aborted", STALE_REASON)) for rid in still_open]
                )
    except SQLAlchemyError as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}"
        ) from bad
    return still_open
