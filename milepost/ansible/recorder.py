"""The ledger writer used while a playbook runs: a bounded queue and one thread that
group-commits (what arrives within LINGER of a batch's first record goes in with it, one
transaction), so recording never holds up Ansible.

Nothing is dropped: a full queue makes the producer wait; a batch the ledger cannot take
(disk full, database down) is spooled to a local JSONL file, one warning is given, and
`milepost ledger replay` (or the next run) writes it in. A run interrupted by SIGINT or
SIGTERM is closed as aborted; a run killed with SIGKILL is closed as aborted by the next
ledger command or run (it loses what it had not yet committed: at most LINGER's worth and
what was queued behind it).
"""

import atexit
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from milepost.errors import MilepostError
from milepost.ledger import Ledger, LedgerUnavailable, new_run_id, run_ended, run_started, spool

Record = dict[str, Any]
BATCH = 500
QUEUE_SIZE = 10_000
#: How long a batch waits for more records. Results arrive one at a time, a few a second,
#: and a transaction for each would cost more than the result itself; on 20 lab hosts a
#: second's wait makes about one transaction per task instead of one per result.
LINGER = 1.0
_STOP = object()


def git_commit(root: Path) -> str:
    """The commit the playbooks ran from, or "unknown" outside a git checkout."""
    proc = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


class Recorder:
    """Owns one run in the ledger, from `start` to `finish`."""

    def __init__(self, url: str | None, warn: Callable[[str], None]) -> None:
        self._url = url
        self._warn = warn
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_SIZE)
        self._ledger: Ledger | None = None
        self._spooling = False
        self._owner = os.getpid()
        self._thread: threading.Thread | None = None
        self._ended = False
        self._previous_sigterm: Any = None
        self._interrupted = ""
        self.run_id = os.environ.get("MILEPOST_RUN_ID") or new_run_id()
        # Lookups in the playbook (the per-host lock) name the run the ledger records.
        os.environ["MILEPOST_RUN_ID"] = self.run_id

    def start(self, **run: Any) -> None:
        """Record the run's start, after replaying spooled records and closing stale runs."""
        try:
            self._ledger = Ledger.open(self._url)
            self._ledger.recover()
        except (MilepostError, OSError) as exc:
            self._ledger = None
            self._start_spooling(f"ledger unavailable ({exc})")
        self._thread = threading.Thread(target=self._drain, name="milepost-ledger", daemon=True)
        self._thread.start()
        self.put(run_started(run_id=self.run_id, **run))
        atexit.register(self._at_exit)
        self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    @property
    def interrupted(self) -> bool:
        """Whether the run received SIGTERM."""
        return bool(self._interrupted)

    def put(self, record: Record) -> None:
        """Queue a record (waits while the queue is full: never drops)."""
        record.setdefault("run_id", self.run_id)
        self._queue.put(record)

    def finish(self, status: str, reason: str | None = None) -> None:
        """Record the run's end and wait until everything is written or spooled.

        A run that received SIGTERM is aborted, even when Ansible went on to the end
        (it can swallow the KeyboardInterrupt the signal is turned into)."""
        if self._ended:
            return
        self._ended = True
        if self._interrupted:
            status, reason = "aborted", self._interrupted
        self.put(run_ended(self.run_id, status, reason))
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join()

    def _at_exit(self) -> None:
        if os.getpid() == self._owner and not self._ended:
            self.finish("aborted", self._interrupted or "interrupted before the run ended")

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        """Stop the run the way Ctrl-C does; the run is closed as aborted at exit.

        Nothing here touches the queue: the signal may have arrived while this thread
        held the queue's lock."""
        if os.getpid() != self._owner:  # a forked worker inherited the handler
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self._interrupted = "terminated by SIGTERM"
        signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)
        raise KeyboardInterrupt

    def _drain(self) -> None:
        """Write what the queue holds in batches: a batch is written once it is full, once
        LINGER seconds have passed since its first record, or when the run ends."""
        stop = False
        while not stop:
            batch = [self._queue.get()]
            deadline = time.monotonic() + LINGER
            while len(batch) < BATCH and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            if batch[-1] is _STOP:
                stop = True
                batch.pop()
            if batch:
                self._write(batch)

    def _write(self, batch: list[Record]) -> None:
        if not self._spooling and self._ledger is not None:
            try:
                self._ledger.append(batch)
                return
            except (LedgerUnavailable, OSError) as exc:
                self._start_spooling(f"ledger write failed ({exc})")
        spool.spool(batch, reason="ledger unavailable")

    def _start_spooling(self, why: str) -> None:
        """From the first failure on, the rest of the run goes to the spool, in order."""
        if not self._spooling:
            self._spooling = True
            self._warn(
                f"Milepost: {why}; recording to the local spool instead. Nothing is lost:"
                " `milepost ledger replay` (or the next run) writes it into the ledger."
            )
