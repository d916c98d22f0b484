"""Opening the ledger as every command opens it: runs whose writer process is gone are
closed as aborted first, spool files of finished writers are replayed, and what waits in
the spool is said (on stderr, one line each)."""

from __future__ import annotations

import sys

import milepost.ledger.spool as spooling
from milepost.errors import UserError
from milepost.ledger.book import Ledger
from milepost.ledger.database import LedgerUnavailable

__all__ = ["open_ledger", "tidy"]


def _warn(message: str) -> None:
    print(f"milepost: {message}", file=sys.stderr)


def tidy(ledger: Ledger, replay_finished: bool = True) -> None:
    """Close runs whose writer is gone (replaying the spool files of finished writers
    first, unless replay_finished is False) and say what still waits in the spool."""
    try:
        if replay_finished:
            replayed, closed = ledger.recover()
        else:
            replayed, closed = 0, ledger.close_stale_runs()
    except (LedgerUnavailable, UserError) as bad:
        _warn(f"warning: {bad}")
    else:
        if replayed:
            _warn(f"replayed {replayed} spooled records of finished runs into the ledger")
        for run_id in closed:
            _warn(f"closed run {run_id} as aborted: its writer process is gone")
    waiting = spooling.pending()
    if waiting:
        _warn(
            f"{len(waiting)} spool file(s) wait in {waiting[0].parent}:"
            " `milepost ledger replay` writes them into the ledger"
        )


def open_ledger(replay_finished: bool = True) -> Ledger:
    ledger = Ledger.open()
    tidy(ledger, replay_finished)
    return ledger
