"""The status dashboard's sections, each gathered from the ledger and the inventory
(milepost.reports.status puts them together): the inventory's systems, vendors, interfaces
and windows, the ledger's integrity, open glitches, exposure, vendors' scorecards and
interface checks, and the months of the charts.

Every free text taken from a record (glitch titles, failure messages) is scrubbed of
secrets (milepost.ansible.redaction, :class:`_Cleaner`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.ansible.redaction import Redactor
from milepost.change_control.approvals import load_plans, load_settings, load_signatures
from milepost.change_control.emergencies import emergency_approvals
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.inventory.systems import (
    BLACKOUTS_VAR,
    PROGRAM_VAR,
    WINDOW_VAR,
    load_systems,
    program_name,
    system_window,
    systems_of_hosts,
)
from milepost.inventory.vendors import INTERFACES_VAR, load_vendors, vendor_of_host
from milepost.inventory.windows import window_state
from milepost.ledger.chain import format_time
from milepost.ledger.schema import records as T
from milepost.oversight.glitch_systems import glitch_systems
from milepost.oversight.scorecard import last_months
from milepost.patching.exposure import open_hosts
from milepost.reports.checks import latest_interface_checks
from milepost.reports.plain import count, month_label, plain_moment, plain_time
from milepost.reports.recent_changes import DEFAULT_DAYS
from milepost.reports.status_model import (
    EmergencyRow,
    ExposureSummary,
    GlitchRow,
    Integrity,
    InterfaceRow,
    MonthPoint,
    NextWindow,
    UpdateRow,
    VendorRow,
)

if TYPE_CHECKING:
    from milepost.inventory.systems import System
    from milepost.inventory.vendors import Vendor
    from milepost.inventory.windows import Blackout, Window
    from milepost.ledger.book import Ledger
    from milepost.oversight.registers import Note
    from milepost.oversight.scorecard import Period
    from milepost.patching.advisories import Advisory
    from milepost.patching.exposure import Exposure

__all__: list[str] = []

MAX_TEXT = 400
UNKNOWN_IMPACT = ("", "unknown", "none given", "not known")
GLITCH_STATUS_WORDS = {"open": "Open", "investigating": "Being investigated"}
INTERFACE_WORDS = {"ok": "Up", "warning": "Slow or warning", "failed": "Down"}
NO_ADVISORIES = "No known security advisories affect the fleet"


def _periods(today: date, months: int) -> list[Period]:
    return last_months(today, months)


def _point(period: Period, good: int, total: int) -> MonthPoint:
    return MonthPoint(
        month=period.label,
        label=month_label(period.label),
        good=good,
        total=total,
        percent=round(100.0 * good / total, 1) if total else None,
    )


class _Cleaner:
    """Free text from records, made safe to show: secrets masked, one line, cut."""

    def __init__(self) -> None:
        self._redactor = Redactor()

    def __call__(self, value: Any, limit: int = MAX_TEXT) -> str:
        text = " ".join(self._redactor.scrub(str(value)).split())
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def everything(self, value: Any) -> Any:
        """Every string inside plain data, scrubbed (the last pass over the model)."""
        if isinstance(value, str):
            return self._redactor.scrub(value)
        if isinstance(value, dict):
            return {key: self.everything(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.everything(item) for item in value]
        return value


# ------------------------------------------------------------------ inventory


@dataclass
class _Inventory:
    systems: dict[str, System]
    vendors: dict[str, Vendor]
    host_vendor: dict[str, str]
    interfaces: list[dict[str, Any]]
    #: {system key: (its window or None, its blackouts)}
    windows: dict[str, tuple[Window | None, list[Blackout]]]
    program: str


def _read_inventory(sources: Sequence[Path] | None) -> _Inventory:
    paths = list(sources) if sources else default_inventory()
    systems = load_systems(paths)
    vendors = load_vendors(paths)
    controller, per_host = inventory_variables(
        paths, (PROGRAM_VAR, INTERFACES_VAR, WINDOW_VAR, BLACKOUTS_VAR)
    )
    listed = controller.get(INTERFACES_VAR)
    interfaces = [
        dict(entry)
        for entry in (listed if isinstance(listed, list) else [])
        if isinstance(entry, Mapping) and entry.get("name")
    ]
    return _Inventory(
        systems=systems,
        vendors=vendors,
        host_vendor=vendor_of_host(paths),
        interfaces=interfaces,
        windows={key: system_window(system, per_host) for key, system in systems.items()},
        program=program_name(controller.get(PROGRAM_VAR)),
    )


def _next_window(window: Window | None, blackouts: Sequence[Blackout], now: datetime) -> NextWindow:
    if window is None:
        return NextWindow("No window set")
    is_open, _, opens = window_state(window, blackouts, now)
    if is_open:
        return NextWindow("Window open now", format_time(now), window.timezone, True)
    if opens is not None:
        return NextWindow(plain_moment(opens), opens.isoformat(), window.timezone)
    return NextWindow("No opening in the next year (blackout dates)")


def _has_records(ledger: Ledger, hosts: Sequence[str]) -> bool:
    if not hosts:
        return False
    with ledger.read_transaction() as conn:
        for host in hosts:
            if conn.execute(select(T.c.seq).where(T.c.host == host).limit(1)).first():
                return True
    return False


# ------------------------------------------------------------------ sections


def _integrity(ledger: Ledger) -> Integrity:
    result = ledger.verify()
    if result.ok:
        return Integrity(True, result.count, "Records verified")
    return Integrity(
        False,
        result.count,
        "Record check FAILED — tell operations",
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
    )


def _glitches(
    notes: Sequence[Note], systems: Mapping[str, System], clean: _Cleaner
) -> list[GlitchRow]:
    rows = []
    for note in sorted(notes, key=lambda n: n.added_at, reverse=True):
        keys = glitch_systems(note, systems)
        names = [systems[k].name for k in keys]
        impact = note.customer_impact
        assessed = impact is not None and impact.strip().lower() not in UNKNOWN_IMPACT
        if assessed:
            shown = clean(impact)
        elif keys:
            shown = "Not yet assessed. " + " ".join(
                f"When {systems[k].name} is affected: {systems[k].impact}" for k in keys
            )
        else:
            shown = "Not yet assessed."
        rows.append(
            GlitchRow(
                glitch_id=clean(note.note_id, 80),
                title=clean(note.title, 200),
                systems=names,
                system_keys=keys,
                impact=shown,
                impact_assessed=assessed,
                opened_at=note.detected_at or note.added_at,
                opened_text=plain_time(note.detected_at or note.added_at),
                status=note.status,
                status_text=GLITCH_STATUS_WORDS.get(
                    note.status, clean(note.status, 40).capitalize()
                ),
                hosts=[clean(h, 255) for h in note.hosts],
                run_id=note.run_id,
            )
        )
    return rows


#: Security updates listed on the dashboard at most; and how long one stays listed once
#: every server has it.
MAX_UPDATES_SHOWN = 20
CLOSED_SHOWN_DAYS = 30


def _update_rows(
    items: Sequence[Exposure], advisories: Mapping[str, Advisory], today: date
) -> list[UpdateRow]:
    """Per advisory: the servers waiting for it and those that got it (a server that never
    needed it is neither); waiting ones first, the nearest deadline first."""
    by_advisory: dict[str, list[Exposure]] = {}
    for item in items:
        by_advisory.setdefault(item.advisory_id, []).append(item)
    rows = []
    for advisory_id, found in by_advisory.items():
        waiting = sorted({e.host for e in found if e.status == "exposed"})
        closed = [e for e in found if e.status == "fixed" and e.closed_at]
        last = max((e.closed_at or "" for e in closed), default="")[:10] or None
        if not waiting and (
            last is None or (today - date.fromisoformat(last)).days > CLOSED_SHOWN_DAYS
        ):
            continue
        advisory = advisories.get(advisory_id)
        cves = list(advisory.cves or ()) if advisory is not None else []
        if not cves and advisory_id.startswith("CVE-"):
            cves = [advisory_id]
        rows.append(
            UpdateRow(
                advisory_id=advisory_id,
                title=(advisory.title if advisory is not None and advisory.title else advisory_id),
                cves=cves,
                kev=any(e.kev for e in found),
                severity=found[0].severity,
                due=min(e.due for e in found),
                overdue=any(e.overdue for e in found if e.status == "exposed"),
                packages=sorted({e.package for e in found}),
                open_hosts=waiting,
                closed_hosts=sorted({e.host for e in closed} - set(waiting)),
                closed_on=None if waiting else last,
            )
        )
    rows.sort(key=lambda r: (not r.open_hosts, not r.overdue, r.due, r.advisory_id))
    return rows[:MAX_UPDATES_SHOWN]


def _exposure_summary(
    items: Sequence[Exposure],
    advisories: Mapping[str, Advisory],
    systems: Mapping[str, System],
    today: date,
) -> ExposureSummary:

    exposed = open_hosts(items)
    overdue = sorted({e.host for e in items if e.overdue})
    pending = [e.due for e in items if e.status == "exposed" and not e.overdue]
    late = [e.due for e in items if e.overdue]
    next_due = min(pending) if pending else None
    if not any(a.packages for a in advisories.values()) or not items:
        text = NO_ADVISORIES
    elif not exposed:
        text = "Every server has the security updates of the known advisories"
    else:
        text = f"{count(len(exposed), 'server')} waiting for a security update"
        text += (
            f", {len(overdue)} of them past the deadline" if overdue else ", none past the deadline"
        )
    return ExposureSummary(
        text=text,
        advisories=sum(1 for a in advisories.values() if a.packages),
        hosts_exposed=len(exposed),
        hosts_overdue=len(overdue),
        next_due=next_due,
        oldest_overdue_due=min(late) if late else None,
        systems_exposed=[s.name for s in systems_of_hosts(systems, exposed)],
        systems_overdue=[s.name for s in systems_of_hosts(systems, overdue)],
        hosts=exposed,
        updates=_update_rows(items, advisories, today),
    )


def _vendor_rows(cards: Sequence[Any], vendors: Mapping[str, Vendor]) -> list[VendorRow]:
    rows = []
    for card in cards:
        contract = card.patch_contract
        judged = contract.met + contract.missed
        patch_text = (
            f"{contract.met} on time, {contract.missed} late"
            + (f", {contract.excepted} excepted" if contract.excepted else "")
            if judged or contract.excepted
            else "No patch deadlines this month"
        )
        if card.availability_percent is None:
            availability_text = "No checks this month"
        else:
            availability_text = (
                f"{card.availability_percent:g}% (target {card.availability_target:g}%)"
            )
            availability_text += " — met" if card.availability_met else " — below target"
        overdue = card.open_overdue
        rows.append(
            VendorRow(
                key=card.vendor,
                name=card.name,
                role=vendors[card.vendor].role if card.vendor in vendors else "",
                period=card.period,
                patch_met=contract.met,
                patch_missed=contract.missed,
                patch_excepted=contract.excepted,
                patch_text=patch_text,
                availability_percent=card.availability_percent,
                availability_target=card.availability_target,
                availability_met=card.availability_met,
                availability_text=availability_text,
                questions=card.questions,
                questions_overdue=overdue,
                questions_text=(
                    f"{count(overdue, 'question')} overdue" if overdue else "None overdue"
                ),
                agency_questions_overdue=len(card.agency_overdue_ids),
                agency_questions_text=(
                    f"{count(len(card.agency_overdue_ids), 'question')} overdue"
                    if card.agency_overdue_ids
                    else "None overdue"
                ),
                agency_overdue_ids=list(card.agency_overdue_ids),
            )
        )
    return rows


def _interfaces(ledger: Ledger, inventory: _Inventory, clean: _Cleaner) -> list[InterfaceRow]:
    names = [str(entry["name"]) for entry in inventory.interfaces]
    newest = latest_interface_checks(ledger, names)
    rows = []
    for entry in inventory.interfaces:
        name = str(entry["name"])
        vendor = str(entry["vendor"]) if entry.get("vendor") else None
        known = inventory.vendors.get(vendor) if vendor else None
        checked = newest.get(name)
        days: int | None = None
        if checked is None:
            status, words, at, messages = "unknown", "Not yet checked", None, []
        else:
            at, body = checked
            status = str(body.get("status") or "unknown")
            words = INTERFACE_WORDS.get(status, "Not yet checked")
            listed = body.get("messages")
            messages = [clean(m, 300) for m in listed] if isinstance(listed, list) else []
            left = body.get("cert_days_left")
            days = left if isinstance(left, int) and not isinstance(left, bool) else None
        rows.append(
            InterfaceRow(
                name=name,
                vendor=vendor,
                vendor_name=known.name if known else (vendor or "—"),
                kind=str(entry["kind"]) if entry.get("kind") else None,
                status=status if status in INTERFACE_WORDS else "unknown",
                status_text=words,
                last_checked=at,
                last_checked_text=plain_time(at) if at else "Never",
                messages=messages,
                cert_days_left=days,
            )
        )
    return rows


#: How the dashboard names an emergency's approval state.
APPROVAL_WORDS = {
    "approved": "Approved",
    "approved late": "Approved late",
    "awaiting": "Awaiting approval",
    "overdue": "Approval overdue",
}


def _emergencies(
    ledger: Ledger, sources: Sequence[Path] | None, moment: datetime
) -> list[EmergencyRow]:
    """Emergency changes still awaiting approval, and those that ran in the last
    DEFAULT_DAYS days (as the recent changes), newest first. Approvals count when they
    verify against the inventory's allowed-signers file (none without one)."""
    settings = load_settings(list(sources) if sources else None)
    found = emergency_approvals(
        load_plans(ledger), load_signatures(ledger), settings.allowed_signers, moment
    )
    since = format_time(moment - timedelta(days=DEFAULT_DAYS))
    rows = []
    for e in reversed(found):
        state = e.state(moment)
        if state in ("approved", "approved late") and format_time(e.ran_at) < since:
            continue
        rows.append(
            EmergencyRow(
                plan_id=e.plan_id,
                run_id=e.run_id,
                advisory=e.advisory,
                hosts=e.hosts,
                ran_at=format_time(e.ran_at),
                ran_text=plain_time(format_time(e.ran_at)),
                approve_by=format_time(e.approve_by),
                approve_by_text=plain_time(format_time(e.approve_by)),
                state=state,
                state_text=APPROVAL_WORDS[state],
                approved_by=e.approved_by,
            )
        )
    return rows
