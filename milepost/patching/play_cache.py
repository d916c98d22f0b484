"""What a run reads from the maintenance ledger once per play, for the plugins of every host:
the runs that have ended (their host locks are stale), the advisories and the patch
exceptions (the security floor of milepost_apt_pin).

The maintenance_ledger callback calls load() in Ansible's main process as each play starts.
Ansible forks the worker of every task and host from that process, so each action plugin
reads this copy instead of opening the ledger (or starting a process) per host. A worker of
a run without the callback loads it itself, once per worker. The ledger is opened, read and
closed before any worker exists: no connection is shared across fork().

A ledger that is configured but cannot be read leaves nothing loaded, and the readers raise
UserError: the plugins fail the host (fail closed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from milepost.errors import MilepostError
from milepost.ledger.book import open_existing
from milepost.ledger.config import ledger_url
from milepost.patching.advisories import load_advisories
from milepost.patching.exposure import load_exceptions

#: How many of the newest runs are looked at for ended ones.
RUN_LIMIT = 500
_ENDED = ("successful", "failed", "aborted")

_view: dict[str, Any] = {}


def load(url: str | None = None) -> None:
    """Read the ledger now (closing runs whose writer is gone first) and keep what was read."""

    _view.clear()
    url = url or ledger_url()
    ledger = open_existing(url)
    if ledger is None:
        _view.update(url=url, ended=[], advisories={}, exceptions=[], at=_now())
        return
    try:
        try:
            ledger.close_stale_runs()
        except MilepostError:
            pass  # a ledger that can be read but not written still says which runs ended
        runs = ledger.runs(limit=RUN_LIMIT)
        advisories = load_advisories(ledger)
        exceptions = load_exceptions(ledger)
    finally:
        ledger.close()
    _view.update(
        url=url,
        ended=[str(r["run_id"]) for r in runs if r.get("status") in _ENDED],
        advisories=advisories,
        exceptions=exceptions,
        at=_now(),
    )


def clear() -> None:
    _view.clear()


def _now() -> datetime:
    return datetime.now(UTC)


def _loaded(url: str | None) -> dict[str, Any]:
    if not _view or _view.get("url") != (url or ledger_url()):
        load(url)
    return _view


def ended_runs(url: str | None = None) -> list[str]:
    """Ids of the recent runs the ledger records as ended."""
    return list(_loaded(url)["ended"])


def security_data(url: str | None = None) -> tuple[dict[str, Any], list[Any]]:
    """(advisories by id, patch exceptions) as the ledger held them when loaded."""
    view = _loaded(url)
    return view["advisories"], view["exceptions"]
