"""The status dashboard's data: a plain model gathered from the ledger and the inventory.

Nothing here reads Ansible's output. The model (milepost.reports.status_model) is plain
data (dataclasses, then a dict for the page and for status.json), in plain words for
communications and customer-service staff; host names appear only in the fields meant for
engineers (``hosts``, ``run_id``). Each section is gathered by
milepost.reports.status_sections; here they are put together.

A system's status, the first rule that matches:

1. "Maintenance under way": a maintenance run without an end touching its hosts, started
   within the last 12 hours (milepost.reports.maintenance);
2. "Problem reported": an open glitch naming one of its hosts (or the system), or the
   newest quality-control result of one of its hosts failed;
3. "Security update overdue": one of its hosts is exposed to an advisory past its due
   date (milepost.patching.exposure, with the inventory's patch policy and the exceptions);
4. "Working normally": the ledger holds records about its hosts;
5. "Not yet checked": it holds none.

Every free text taken from a record (glitch titles, failure messages) is scrubbed of
secrets (milepost.ansible.redaction) before the model is handed out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from milepost.errors import UserError
from milepost.ledger.bodies import collecting
from milepost.ledger.chain import format_time
from milepost.oversight.catch_rate import catch_rate
from milepost.oversight.glitch_systems import glitch_systems
from milepost.oversight.lesson_actions import actions
from milepost.oversight.register_reading import notes
from milepost.oversight.registers import GLITCH
from milepost.oversight.scorecard import PatchCompliance, _judge, scorecards
from milepost.patching import policy as patch_policy
from milepost.patching.advisories import load_advisories
from milepost.patching.exposure import exposures
from milepost.reports.checks import availability_by_month, latest_qc
from milepost.reports.maintenance import last_maintenance, system_runs
from milepost.reports.overdue_actions import overdue_action_rows
from milepost.reports.plain import (
    DEFAULT_MONTHS,
    MAX_MONTHS,
    STATUS_WORDS,
    count,
    plain_time,
)
from milepost.reports.recent_changes import recent_changes
from milepost.reports.status_model import DashboardStatus, SystemRow
from milepost.reports.status_sections import (
    _Cleaner,
    _emergencies,
    _exposure_summary,
    _glitches,
    _has_records,
    _integrity,
    _interfaces,
    _next_window,
    _periods,
    _point,
    _read_inventory,
    _vendor_rows,
)

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

__all__ = [
    "DEFAULT_MONTHS",
    "MAX_MONTHS",
    "build_status",
    "check_months",
]

#: Warnings about skipped ledger records the page lists (the count shows them all).
MAX_SKIPPED_SHOWN = 50


def check_months(months: int) -> int:
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise UserError(f"--months must be a whole number from 1 to {MAX_MONTHS}, not {months!r}")
    return months


def build_status(
    ledger: Ledger,
    sources: Sequence[Path] | None = None,
    months: int = DEFAULT_MONTHS,
    now: datetime | None = None,
) -> DashboardStatus:
    """The dashboard's data for the inventory at ``sources`` (default: the one ansible.cfg
    names) and ``ledger``, as of ``now`` (default: now, UTC). UserError (one line) for bad
    inventory data or a bad ``months``. Ledger records that could not be used are left
    out and listed in ``skipped_records``."""

    with collecting() as skipped:
        status = _build_status(ledger, sources, months, now)
    status.skipped_records = skipped.messages[:MAX_SKIPPED_SHOWN]
    status.skipped_count = len(skipped.messages)
    return status


def _build_status(
    ledger: Ledger,
    sources: Sequence[Path] | None,
    months: int,
    now: datetime | None,
) -> DashboardStatus:

    months = check_months(months)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    today = moment.date()
    clean = _Cleaner()
    inventory = _read_inventory(sources)
    settings = patch_policy.load(list(sources) if sources else None)
    systems = inventory.systems
    all_hosts = sorted({h for s in systems.values() for h in s.hosts})

    integrity = _integrity(ledger)
    runs = system_runs(ledger, {k: s.hosts for k, s in systems.items()}, moment)
    every_note = notes(ledger)
    open_glitches = [n for n in every_note if n.type == GLITCH and n.is_open]
    qc = latest_qc(ledger, all_hosts)
    advisories = load_advisories(ledger)
    items = exposures(ledger, settings, advisories=advisories, on=today)

    rows = []
    for key, system in systems.items():
        hosts = set(system.hosts)
        glitched = [n for n in open_glitches if key in glitch_systems(n, systems)]
        qc_failed = sorted(h for h in hosts if h in qc and not qc[h].ok)
        overdue = sorted({e.host for e in items if e.overdue and e.host in hosts})
        if key in runs.under_way:
            status = "under-way"
            started = runs.under_way[key].started_at
            detail = f"Maintenance started {plain_time(started)}"
        elif glitched:
            status = "problem"
            detail = (
                f"{count(len(glitched), 'open problem report')}:"
                f" {', '.join(clean(n.note_id, 80) for n in glitched)}"
            )
        elif qc_failed:
            status = "problem"
            detail = "A quality check failed after the last maintenance"
        elif overdue:
            status = "overdue"
            detail = "A security update is past its deadline"
        elif _has_records(ledger, system.hosts):
            status, detail = "normal", "No problems recorded"
        else:
            status, detail = "unknown", "Nothing recorded about this system yet"
        last = runs.last.get(key)
        rows.append(
            SystemRow(
                key=key,
                name=system.name,
                serves=system.serves,
                impact=system.impact,
                status=status,
                status_text=STATUS_WORDS[status],
                status_detail=detail,
                last_maintenance=(
                    last_maintenance(ledger, last, hosts, moment) if last is not None else None
                ),
                next_maintenance=_next_window(*inventory.windows[key], moment),
                vendors=[
                    inventory.vendors[v].name if v in inventory.vendors else v
                    for v in system.vendors
                ],
                hosts=list(system.hosts),
            )
        )

    periods = _periods(today, months)
    compliance = []
    for period in periods:
        judged = PatchCompliance()
        for e in items:
            _judge(
                judged,
                due=date.fromisoformat(e.due),
                closed=date.fromisoformat(e.closed_at[:10]) if e.closed_at else None,
                fixed=e.status == "fixed",
                label=e.host,
                period=period,
                today=today,
                excepted=e.status == "excepted",
            )
        compliance.append(_point(period, judged.met, judged.met + judged.missed))
    availability = [
        _point(period, up, total)
        for period, (total, up) in zip(periods, availability_by_month(ledger, periods), strict=True)
    ]
    cards = scorecards(
        ledger,
        inventory.vendors,
        inventory.host_vendor,
        settings,
        periods[-1],
        today=today,
        now=moment,
        systems=systems,
    )
    return DashboardStatus(
        program=inventory.program,
        generated_at=format_time(moment),
        generated_text=plain_time(format_time(moment)),
        months=months,
        integrity=integrity,
        systems=rows,
        interfaces=_interfaces(ledger, inventory, clean),
        glitches=_glitches(open_glitches, systems, clean),
        changes=recent_changes(ledger, systems, moment),
        emergencies=_emergencies(ledger, sources, moment),
        overdue_actions=overdue_action_rows(
            actions(ledger),
            {n.note_id: n for n in every_note},
            systems,
            inventory.vendors,
            inventory.host_vendor,
            moment,
            clean,
        ),
        exposure=_exposure_summary(items, advisories, systems, today),
        vendors=_vendor_rows(cards, inventory.vendors),
        patch_compliance=compliance,
        availability=availability,
        qc_catch=catch_rate(ledger, months, moment),
    )


def status_data(status: DashboardStatus) -> dict[str, Any]:
    """The model as plain data, every string scrubbed of secrets once more."""
    return dict(_Cleaner().everything(status.as_dict()))
