"""The fleet lock: one emergency patch at a time, on this controller and, with a PostgreSQL
ledger, across every controller that writes to it.

On this controller: an exclusive ``flock`` on ``<state dir>/fleet.lock``, held for the
whole run. The kernel drops it when the holder exits, however it exits (SIGKILL included),
so a lock is never left stale. The file names the holder (run, advisory, operator, pid,
since) so a refused second run can say who holds it.

Across controllers (the ledger is PostgreSQL): also a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own, held for the whole run; the server
drops it when that connection ends, however the holder ends. The connection's
application_name names the run and the controller, so a refused run on another controller
can say who holds it. Per-host locks (roles/preflight) still keep a maintenance run and
an emergency patch off the same host, whichever controller runs them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Mapping
from typing import IO, Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from milepost.errors import MilepostError, Refused
from milepost.ledger.chain import format_time, utc_now
from milepost.ledger.config import ledger_url as configured_url
from milepost.paths import state_dir

FILE_NAME = "fleet.lock"
#: The advisory lock every controller of one PostgreSQL ledger takes (8 bytes, big-endian).
PG_FLEET_KEY = int.from_bytes(b"MPFLEET!", "big")
#: PostgreSQL keeps application_name to 63 bytes.
MAX_APPLICATION_NAME = 63


class FleetLock:
    """Held from acquire() to release() (or the process's end)."""

    def __init__(self, ledger_url: str | None = None) -> None:
        self.path = state_dir() / FILE_NAME
        self.url = ledger_url if ledger_url is not None else configured_url()
        self._handle: IO[str] | None = None
        self._shared: Any = None  # the PostgreSQL connection holding the advisory lock

    def acquire(self, holder: Mapping[str, Any]) -> None:
        """Take the lock and name the holder; Refused naming the current holder if taken."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise Refused(
                f"another emergency patch holds the fleet lock: {describe(read_holder())};"
                " wait for it to finish (or stop it) and run again"
            ) from None
        record = {
            **holder,
            "pid": os.getpid(),
            "controller": socket.gethostname(),
            "since": utc_now(),
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        self._handle = handle
        if self.url.startswith("postgresql"):
            try:
                self._shared = take_shared(self.url, record)
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        if self._shared is not None:
            self._shared.close()  # ends the session: the server drops the advisory lock
            self._shared = None
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def read_holder(attempts: int = 20) -> dict[str, Any]:
    """Who holds the lock, as its file says (the holder may be writing it: retry briefly)."""
    path = state_dir() / FILE_NAME
    for _ in range(attempts):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def describe(holder: Mapping[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return (
        f"run {holder.get('run_id', '?')} for {holder.get('advisory_id', '?')} by"
        f" {holder.get('operator', '?')} (pid {holder.get('pid', '?')} on"
        f" {holder.get('controller', '?')}) since {holder.get('since', '?')}"
    )


def _split(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as classid (high 32 bits), objid (low 32)."""
    return key >> 32, key & 0xFFFFFFFF


def take_shared(url: str, holder: Mapping[str, Any]) -> Any:
    """Take the fleet's advisory lock on a connection of its own and return that connection
    (closing it releases the lock). Refused naming the holder if another session has it;
    MilepostError if the database cannot be reached."""

    name = f"milepost fleet {holder.get('run_id', '?')}@{holder.get('controller', '?')}"
    engine = create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"application_name": name[:MAX_APPLICATION_NAME], "connect_timeout": 10},
    )
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise MilepostError(
            f"the fleet lock could not be taken: the ledger's database is unreachable"
            f" ({' '.join(str(getattr(exc, 'orig', None) or exc).split())[:200]})"
        ) from None
    got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": PG_FLEET_KEY}).scalar()
    if got:
        return conn
    high, low = _split(PG_FLEET_KEY)
    row = conn.execute(
        text(
            "SELECT a.application_name, a.backend_start FROM pg_locks l"
            " JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid = :high AND l.objid = :low"
        ),
        {"high": high, "low": low},
    ).first()
    conn.close()
    who = f"{row[0]} since {format_time(row[1])}" if row else "holder unknown"
    raise Refused(
        f"another emergency patch holds the fleet lock on the shared ledger: {who};"
        " wait for it to finish (or stop it) and run again"
    )
