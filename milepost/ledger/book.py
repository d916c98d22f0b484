"""The ledger as its users hold it: the records (milepost.ledger.store) and what is done
with them: queries, export and the housekeeping that closes runs whose writer is gone.
Signed checkpoints (milepost.ledger.checkpoint) and archives (milepost.ledger.archive) are
functions of their own modules: they load the signing library, which reading the ledger
does not need."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from milepost.errors import UserError
from milepost.ledger import export, queries, runs, spool
from milepost.ledger.config import ledger_url
from milepost.ledger.store import Store

__all__ = ["Ledger", "open_existing"]


class Ledger(Store):
    """The maintenance ledger at one database URL: ``Ledger.open(url)`` creates or upgrades
    its schema (see milepost.ledger.database.Database)."""

    def recover(self, spool_directory: Path | None = None) -> tuple[int, list[str]]:
        """Housekeeping before any other work: replay spool files whose writer process has
        finished (so a killed run's spooled records land before its run is closed), then
        close_stale_runs(). Returns (records replayed, run ids closed as aborted).

        LedgerUnavailable if the ledger cannot be written; UserError for a damaged spool
        file (it is left in place)."""
        replayed = spool.replay(self, spool_directory, only_finished=True)
        return replayed, self.close_stale_runs()

    def close_stale_runs(self) -> list[str]:
        """Close every open run whose writer process (on this controller) is gone."""
        return runs.close_stale_runs(self)

    def runs(
        self,
        host: str | None = None,
        since: datetime | str | None = None,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first (see milepost.ledger.queries.runs)."""
        return queries.runs(self, host=host, since=since, kind=kind, limit=limit)

    def run(self, run_id: str) -> dict[str, Any]:
        """One run with its task results (see milepost.ledger.queries.run)."""
        return queries.run(self, run_id)

    def host(self, name: str, limit: int = 20) -> dict[str, Any]:
        """A host's recent runs and package versions (see milepost.ledger.queries.host)."""
        return queries.host(self, name, limit=limit)

    def export(self, fmt: str, out: IO[str]) -> int:
        """Write every record (jsonl or csv) to ``out``; return how many."""
        return export.export(self, fmt, out)


def open_existing(url: str | None = None) -> Ledger | None:
    """The ledger to read, or None when it is a SQLite file that does not exist yet (a run
    that only reads never creates one)."""
    url = url or ledger_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"the ledger URL {url!r} is not a SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        if not Path(parsed.database).exists():
            return None
    return Ledger.open(url)
