"""Vendor scorecards: how each vendor met its commitments in a month, from the ledger.

For one vendor and one period (a calendar month, UTC):

- patch compliance of its hosts: every (host, advisory, package) of the exposure
  (milepost.patching.exposure) due by the period's end or closed in it, judged twice,
  against the agency's policy and against the vendor's contract (its patch days per
  severity): met (fixed by the due date, or not yet due at the period's end), missed
  (fixed after the due date, or still exposed past it), excepted (an unexpired exception);
- interface availability: the share of its interfaces' checks in the period (the
  ``interface_check`` records) that found them up (ok or warning), against its target;
- drift findings on its hosts first seen in the period, and those still open;
- runs in the period in which one of its hosts failed or was unreachable, and the hosts
  rolled back (a package changed and changed back in one run);
- questions asked in the period, both ways: those put to the vendor (answered on time,
  answered late, open past due, the median response time against the contract's response
  time) and those the vendor put to the agency (the same counts, against the agency's own
  commitments per category, milepost_question_commitments).
- follow-up actions of lessons learned from glitches that concern the vendor (its hosts,
  or systems it operates: milepost.oversight.action_concerns) overdue at the period's end,
  or today in the current month.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.drift.findings import findings
from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time
from milepost.ledger.schema import records as T
from milepost.oversight.action_concerns import action_glitches, action_vendors
from milepost.oversight.lesson_actions import Action, actions, overdue
from milepost.oversight.questions import TO_AGENCY, TO_VENDOR, questions
from milepost.oversight.register_reading import notes
from milepost.patching.advisories import load_advisories
from milepost.patching.exposure import exposures

if TYPE_CHECKING:
    from milepost.inventory.systems import System
    from milepost.inventory.vendors import Vendor
    from milepost.ledger.book import Ledger
    from milepost.patching.policy import PatchSettings


@dataclass(frozen=True)
class Period:
    """A calendar month, UTC: [start, end)."""

    label: str
    start: date
    end: date

    @property
    def start_text(self) -> str:
        return format_time(datetime(self.start.year, self.start.month, 1, tzinfo=UTC))

    @property
    def end_text(self) -> str:
        return format_time(datetime(self.end.year, self.end.month, 1, tzinfo=UTC))


def parse_period(text: str | None, today: date | None = None) -> Period:
    """YYYY-MM (default: this month). UserError otherwise."""
    if text is None:
        now = today or datetime.now(UTC).date()
        text = f"{now.year:04d}-{now.month:02d}"
    parts = text.split("-")
    if (
        len(parts) != 2
        or not all(p.isascii() and p.isdigit() for p in parts)
        or len(parts[0]) != 4
        or not 1 <= int(parts[1]) <= 12
    ):
        raise UserError(f"--period {shown(text)} is not a month: use YYYY-MM, e.g. 2026-11")
    start = date(int(parts[0]), int(parts[1]), 1)
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return Period(f"{start.year:04d}-{start.month:02d}", start, end)


def last_months(today: date, months: int) -> list[Period]:
    """The ``months`` calendar months up to and including today's, oldest first."""
    labels = []
    year, month = today.year, today.month
    for _ in range(months):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return [parse_period(label) for label in reversed(labels)]


@dataclass
class PatchCompliance:
    met: int = 0
    missed: int = 0
    excepted: int = 0
    missed_items: list[str] = field(default_factory=list)


@dataclass
class OverdueAction:
    """A follow-up action past its due date, as a scorecard lists it."""

    action_id: str
    lesson_id: str
    glitches: list[str]
    kind: str
    title: str
    owner: str
    due: str
    days_overdue: int


@dataclass
class Scorecard:
    vendor: str
    name: str
    period: str
    hosts: list[str]
    patch_policy: PatchCompliance
    patch_contract: PatchCompliance
    interface_checks: int
    interface_up: int
    availability_percent: float | None
    availability_target: float | None
    availability_met: bool | None
    drift_findings: int
    drift_open: int
    failed_runs: list[str]
    rolled_back: list[str]
    questions: int
    answered_on_time: int
    answered_late: int
    open_overdue: int
    median_response_hours: float | None
    response_commitment_hours: float | None
    #: The vendor's questions to the agency asked in the period, and how the agency did.
    agency_questions: int = 0
    agency_answered_on_time: int = 0
    agency_answered_late: int = 0
    agency_open_overdue: int = 0
    agency_median_response_hours: float | None = None
    #: The ids of the vendor's questions to the agency open past their due time (any period).
    agency_overdue_ids: list[str] = field(default_factory=list)
    #: Follow-up actions concerning the vendor overdue at the period's end (or today).
    actions_overdue: list[OverdueAction] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _judge(
    compliance: PatchCompliance, *, due: date, closed: date | None, fixed: bool, label: str,
    period: Period, today: date, excepted: bool,
) -> None:  # fmt: skip
    closed_in_period = closed is not None and period.start <= closed < period.end
    if due >= period.end and not closed_in_period:
        return  # neither due nor closed in this period
    horizon = min(period.end - timedelta(days=1), today)
    if excepted:
        compliance.excepted += 1
    elif fixed and closed is not None and closed <= due:
        compliance.met += 1
    elif fixed and closed is None:
        compliance.met += 1  # fixed before the ledger's first record of it
    elif not fixed and horizon <= due:
        compliance.met += 1  # not yet due at the period's end
    else:
        compliance.missed += 1
        compliance.missed_items.append(label)


def _interface_checks(ledger: Ledger, names: Sequence[str], period: Period) -> tuple[int, int]:
    if not names:
        return 0, 0
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.body).where(
                T.c.kind == "interface_check",
                T.c.recorded_at >= period.start_text,
                T.c.recorded_at < period.end_text,
            )
        ).all()
    total = up = 0
    for seq, text in rows:
        body = usable(seq, "interface_check", text)
        if body is not None and body["name"] in names:
            total += 1
            up += body.get("status") in ("ok", "warning")
    return total, up


def _runs(ledger: Ledger, hosts: set[str], period: Period) -> tuple[list[str], list[str]]:
    """Runs in the period where a host of ``hosts`` failed or was unreachable, and the
    hosts (run:host) rolled back: a package changed and changed back in one run."""
    failed: list[str] = []
    rolled: list[str] = []
    for run in ledger.runs(since=period.start_text):
        if run["started_at"] >= period.end_text:
            continue
        mine = {
            h for h, counts in run["hosts"].items()
            if h in hosts and (counts.get("failed") or counts.get("unreachable"))
        }  # fmt: skip
        if not mine:
            continue
        failed.append(run["run_id"])
        detail = ledger.run(run["run_id"])
        seen: dict[tuple[str, str], str | None] = {}
        for record in detail["records"]:
            if record["kind"] != "package_change" or record["host"] not in mine:
                continue
            body = usable(record["seq"], record["kind"], record["body"])
            if body is None:
                continue
            key = (record["host"], str(body.get("package")))
            if key in seen and body.get("to_version") == seen[key]:
                rolled.append(f"{run['run_id']}:{record['host']}")
            seen.setdefault(key, body.get("from_version"))
    return failed, sorted(set(rolled))


def _median(values: Sequence[float | None]) -> float | None:
    taken = [v for v in values if v is not None]
    return round(statistics.median(taken), 1) if taken else None


def _overdue_actions(
    ledger: Ledger,
    vendor: Vendor,
    hosts: Sequence[str],
    systems: Mapping[str, System],
    period: Period,
    today: date,
) -> list[OverdueAction]:
    """The follow-up actions concerning ``vendor`` overdue at the end of the period's last
    day, or of ``today`` when that is earlier."""
    day = min(period.end - timedelta(days=1), today)
    as_of = datetime.combine(day, time.max, tzinfo=UTC)
    late: list[Action] = overdue(actions(ledger), as_of)
    if not late:
        return []
    known = {n.note_id: n for n in notes(ledger)}
    host_vendor = {host: vendor.key for host in hosts}
    return [
        OverdueAction(
            action_id=a.action_id,
            lesson_id=a.lesson_id,
            glitches=[g.note_id for g in action_glitches(a, known)],
            kind=a.kind,
            title=a.title,
            owner=a.owner,
            due=a.due_at(as_of),
            days_overdue=a.days_overdue(as_of),
        )
        for a in late
        if vendor.key in action_vendors(a, known, systems, host_vendor)
    ]


def scorecard(
    ledger: Ledger,
    vendor: Vendor,
    hosts: Sequence[str],
    settings: PatchSettings,
    period: Period,
    today: date | None = None,
    now: datetime | None = None,
    systems: Mapping[str, System] | None = None,
) -> Scorecard:
    """The scorecard of ``vendor`` (operating ``hosts``) for ``period``, as of ``today``;
    questions are judged at ``now`` (default: the start of ``today``). ``systems`` (the
    inventory's) maps glitches naming a system to its vendors."""

    day = today or (now.astimezone(UTC).date() if now else datetime.now(UTC).date())
    host_set = set(hosts)
    advisories = load_advisories(ledger)
    # The agency's policy alone, and each host's own deadlines: its group's policy cut
    # by the vendor's contract (milepost.patching.policy.load).
    agency = type(settings)(
        policy=settings.policy, host_policies={}, kev_products=settings.kev_products
    )
    policy_view = exposures(ledger, agency, advisories=advisories, hosts=host_set, on=day)
    contract_view = exposures(ledger, settings, advisories=advisories, hosts=host_set, on=day)
    by_policy, by_contract = PatchCompliance(), PatchCompliance()
    for view, compliance in ((policy_view, by_policy), (contract_view, by_contract)):
        for e in view:
            _judge(
                compliance,
                due=date.fromisoformat(e.due),
                closed=date.fromisoformat(e.closed_at[:10]) if e.closed_at else None,
                fixed=e.status == "fixed",
                label=f"{e.host} {e.advisory_id} {e.package} (due {e.due})",
                period=period,
                today=day,
                excepted=e.status == "excepted",
            )
    total, up = _interface_checks(ledger, list(vendor.interfaces), period)
    target = vendor.commitments.interface_availability_percent
    percent = round(100.0 * up / total, 2) if total else None
    drift = [
        f for f in findings(ledger)
        if f.host in host_set and period.start_text <= f.first_seen < period.end_text
    ]  # fmt: skip
    failed_runs, rolled_back = _runs(ledger, host_set, period)
    moment = now or datetime(day.year, day.month, day.day, tzinfo=UTC)
    theirs = [q for q in questions(ledger, now=moment) if q.vendor == vendor.key]
    in_period = [q for q in theirs if period.start_text <= q.asked_at < period.end_text]
    asked = [q for q in in_period if q.direction == TO_VENDOR]
    to_us = [q for q in in_period if q.direction == TO_AGENCY]
    return Scorecard(
        vendor=vendor.key,
        name=vendor.name,
        period=period.label,
        hosts=sorted(host_set),
        patch_policy=by_policy,
        patch_contract=by_contract,
        interface_checks=total,
        interface_up=up,
        availability_percent=percent,
        availability_target=target,
        availability_met=None if percent is None or target is None else percent >= target,
        drift_findings=len(drift),
        drift_open=sum(1 for f in drift if f.state == "open"),
        failed_runs=failed_runs,
        rolled_back=rolled_back,
        questions=len(asked),
        answered_on_time=sum(1 for q in asked if q.state == "answered" and not q.late),
        answered_late=sum(1 for q in asked if q.state == "answered" and q.late),
        open_overdue=sum(1 for q in asked if q.state == "open" and q.late),
        median_response_hours=_median([q.response_hours_taken for q in asked]),
        response_commitment_hours=vendor.commitments.question_response_hours,
        agency_questions=len(to_us),
        agency_answered_on_time=sum(1 for q in to_us if q.state == "answered" and not q.late),
        agency_answered_late=sum(1 for q in to_us if q.state == "answered" and q.late),
        agency_open_overdue=sum(1 for q in to_us if q.overdue),
        agency_median_response_hours=_median([q.response_hours_taken for q in to_us]),
        agency_overdue_ids=[
            q.question_id for q in theirs if q.direction == TO_AGENCY and q.overdue
        ],
        actions_overdue=_overdue_actions(ledger, vendor, hosts, systems or {}, period, day),
    )


def scorecards(
    ledger: Ledger,
    vendors: Mapping[str, Vendor],
    host_vendor: Mapping[str, str],
    settings: PatchSettings,
    period: Period,
    only: str | None = None,
    today: date | None = None,
    now: datetime | None = None,
    systems: Mapping[str, System] | None = None,
) -> list[Scorecard]:
    """Scorecards of every vendor (or ``only`` that one: UserError if unknown)."""
    if only is not None and only not in vendors:
        known = ", ".join(sorted(vendors)) or "none (set milepost_vendors)"
        raise UserError(f"unknown vendor {shown(only)}: the inventory's vendors are {known}")
    return [
        scorecard(
            ledger,
            vendor,
            [h for h, v in host_vendor.items() if v == key],
            settings,
            period,
            today,
            now,
            systems,
        )
        for key, vendor in sorted(vendors.items())
        if only is None or key == only
    ]
