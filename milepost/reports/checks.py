"""Quality-control results and vendor interface checks, from the ledger.

Each query goes through an index: a host's newest ``qc_result`` through (host, kind, seq),
``interface_check`` records through (kind, recorded_at), newest first, stopping as soon as
every interface has its newest check.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.ledger.bodies import usable
from milepost.ledger.schema import records as T
from milepost.quality.qc import RESULT_KIND

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.oversight.scorecard import Period

__all__ = [
    "INTERFACE_KIND",
    "INTERFACE_UP",
    "QcState",
    "availability_by_month",
    "latest_interface_checks",
    "latest_qc",
]

INTERFACE_KIND = "interface_check"
#: Interface check statuses that count as up (as milepost.oversight.scorecard counts them).
INTERFACE_UP = ("ok", "warning")
QC_BAD = ("failed", "error")
STREAM = 1000


@dataclass
class QcState:
    """A host's newest quality-control results (those of its newest QC run)."""

    run_id: str | None
    recorded_at: str
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def latest_qc(ledger: Ledger, hosts: Collection[str]) -> dict[str, QcState]:
    """{host: its newest QC results} for the hosts of ``hosts`` the ledger has results for.
    ``failed``: (check, message) of each check that failed or erred."""
    found: dict[str, QcState] = {}
    with ledger.read_transaction() as conn:
        for host in sorted(hosts):
            newest = conn.execute(
                select(T.c.seq, T.c.run_id, T.c.recorded_at)
                .where(T.c.host == host, T.c.kind == RESULT_KIND)
                .order_by(T.c.seq.desc())
                .limit(1)
            ).first()
            if newest is None:
                continue
            query = select(T.c.seq, T.c.body).where(T.c.host == host, T.c.kind == RESULT_KIND)
            query = (
                query.where(T.c.run_id == newest.run_id)
                if newest.run_id is not None
                else query.where(T.c.seq == newest.seq)
            )
            state = QcState(run_id=newest.run_id, recorded_at=newest.recorded_at)
            for seq, text in conn.execute(query.order_by(T.c.seq)):
                body = usable(seq, RESULT_KIND, text)
                if body is not None and body["status"] in QC_BAD:
                    state.failed.append(
                        (str(body.get("check") or "a check"), str(body.get("message") or ""))
                    )
            found[host] = state
    return found


def latest_interface_checks(
    ledger: Ledger, names: Collection[str]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """{interface name: (recorded_at, body) of its newest interface_check} for ``names``."""
    wanted = set(names)
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    if not wanted:
        return found
    with ledger.read_transaction() as conn:
        result = conn.execute(
            select(T.c.seq, T.c.recorded_at, T.c.body)
            .where(T.c.kind == INTERFACE_KIND)
            .order_by(T.c.recorded_at.desc(), T.c.seq.desc())
            .execution_options(yield_per=STREAM)
        )
        try:
            for seq, recorded_at, text in result:
                body = usable(seq, INTERFACE_KIND, text)
                name = body["name"] if body is not None else None
                if body is not None and name in wanted and name not in found:
                    found[name] = (recorded_at, body)
                    if len(found) == len(wanted):
                        break
        finally:
            result.close()
    return found


def availability_by_month(ledger: Ledger, periods: Sequence[Period]) -> list[tuple[int, int]]:
    """(checks, up) of every interface check in each period, in the periods' order."""
    if not periods:
        return []
    totals = {period.label: [0, 0] for period in periods}
    first = min(period.start_text for period in periods)
    last = max(period.end_text for period in periods)
    with ledger.read_transaction() as conn:
        result = conn.execute(
            select(T.c.seq, T.c.recorded_at, T.c.body)
            .where(
                T.c.kind == INTERFACE_KIND,
                T.c.recorded_at >= first,
                T.c.recorded_at < last,
            )
            .execution_options(yield_per=STREAM)
        )
        try:
            for seq, recorded_at, text in result:
                counts = totals.get(recorded_at[:7])
                if counts is None:
                    continue
                body = usable(seq, INTERFACE_KIND, text)
                if body is None:
                    continue
                counts[0] += 1
                counts[1] += body["status"] in INTERFACE_UP
        finally:
            result.close()
    return [(totals[p.label][0], totals[p.label][1]) for p in periods]
