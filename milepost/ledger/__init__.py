"""The maintenance ledger: every run, task result, package change and finding, append-only
and tamper-evident, in SQLite (default: <checkout>/.milepost/ledger.sqlite) or PostgreSQL
(any SQLAlchemy URL in $MILEPOST_LEDGER_URL).

The integrity model, in plain words
-----------------------------------
Every record carries a SHA-256 hash of its own content (seq, kind, run_id, host,
recorded_at, body) chained to the hash of the record before it. Records are never updated:
a run's end is a new record. Sequence numbers are given out one by one, so a missing
number shows.

What ``verify`` proves on its own: the records in the database form one unbroken chain.
Editing any record, deleting one from the middle, swapping two, or slipping one in between
makes verify fail and name the first record that does not fit.

What it cannot prove on its own: that nothing was cut off the END of the chain, or that
someone with write access did not rewrite a record and then recompute every hash after it
(the result is a valid chain, just not the true one). A hash chain kept only inside the
database cannot rule that out — nothing can.

What a checkpoint adds: ``checkpoint`` writes the head of the chain (its last seq and hash)
signed with an Ed25519 key, to be published OUTSIDE the database (mailed, attached to a
change ticket, copied to another server). ``verify --checkpoint FILE`` then also proves the
ledger still contains that exact head: truncation and rewrite-and-rehash of anything up to
the head are caught. Records written after the last checkpoint have only the chain's
protection until the next checkpoint, so take them regularly (for example after each run).

Archiving moves the oldest records to a file with its own proof and leaves an
``archive_anchor`` record in the chain, so the live chain and the archive each still
verify (see milepost.ledger.archive).

If the database cannot be written, records go to a local spool and are replayed later
(milepost.ledger.spool: ``spool(records, reason)`` and ``replay(ledger)``): nothing is
dropped silently.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from milepost.ledger.archive import verify_archive
    from milepost.ledger.book import Ledger
    from milepost.ledger.chain import GENESIS_HASH, VerifyResult
    from milepost.ledger.config import ledger_url, mask_url
    from milepost.ledger.database import LedgerUnavailable
    from milepost.ledger.runs import (
        RUN_KINDS,
        RUN_STATUSES,
        new_run_id,
        package_change,
        package_facts,
        process_start_time,
        run_ended,
        run_started,
        task_result,
    )
    from milepost.ledger.store import TASK_STATUSES

# The names above are loaded when first used, not when the package is imported: importing
# any milepost.ledger.<module> runs this file first, and loading SQLAlchemy and
# cryptography here would cost every `milepost` command, its --help too, a fifth of a
# second or more (milepost.cli.ledger needs none of them to build its commands).
_HOMES = {
    "verify_archive": "archive",
    "GENESIS_HASH": "chain",
    "VerifyResult": "chain",
    "ledger_url": "config",
    "mask_url": "config",
    "RUN_KINDS": "runs",
    "RUN_STATUSES": "runs",
    "new_run_id": "runs",
    "package_change": "runs",
    "package_facts": "runs",
    "process_start_time": "runs",
    "run_ended": "runs",
    "run_started": "runs",
    "task_result": "runs",
    "TASK_STATUSES": "store",
    "Ledger": "book",
    "LedgerUnavailable": "database",
}

__all__ = [
    "GENESIS_HASH",
    "RUN_KINDS",
    "RUN_STATUSES",
    "TASK_STATUSES",
    "Ledger",
    "LedgerUnavailable",
    "VerifyResult",
    "ledger_url",
    "mask_url",
    "new_run_id",
    "package_change",
    "package_facts",
    "process_start_time",
    "run_ended",
    "run_started",
    "task_result",
    "verify_archive",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
