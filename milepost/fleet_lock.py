"""The fleet lock: one emergency patch at a time on this controller.

An exclusive ``flock`` on ``<state dir>/fleet.lock``, held for the whole run. The kernel
drops it when the holder exits, however it exits (SIGKILL included), so a lock is never
left stale. The file names the holder (run, advisory, operator, pid, since) so a refused
second run can say who holds it. Per-host locks (roles/preflight) still keep a
maintenance run and an emergency patch off the same host.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Mapping
from typing import IO, Any

from milepost.errors import MilepostError
from milepost.ledger.chain import utc_now
from milepost.paths import state_dir

FILE_NAME = "fleet.lock"


class Refused(MilepostError):
    """The run may not start now (fleet lock held, kill switch set): exit 3."""

    exit_code = 3


class FleetLock:
    """Held from acquire() to release() (or the process's end)."""

    def __init__(self) -> None:
        self.path = state_dir() / FILE_NAME
        self._handle: IO[str] | None = None

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

    def release(self) -> None:
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
