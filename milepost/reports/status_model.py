"""The status dashboard's model: plain data (dataclasses, then a dict for the page and for
status.json), in plain words for communications and customer-service staff; host names
appear only in the fields meant for engineers (``hosts``, ``run_id``). Built by
milepost.reports.status.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from milepost.oversight.catch_rate import CatchRate
from milepost.reports.maintenance import LastMaintenance
from milepost.reports.overdue_actions import OverdueActionRow
from milepost.reports.recent_changes import ChangeRow

__all__ = [
    "DashboardStatus",
    "ExposureSummary",
    "UpdateRow",
    "GlitchRow",
    "Integrity",
    "InterfaceRow",
    "MonthPoint",
    "NextWindow",
    "SystemRow",
    "VendorRow",
]


@dataclass
class Integrity:
    ok: bool
    records: int
    text: str
    first_bad_seq: int | None = None
    reason: str | None = None


@dataclass
class NextWindow:
    text: str
    opens_at: str | None = None
    timezone: str | None = None
    open_now: bool = False


@dataclass
class SystemRow:
    key: str
    name: str
    serves: str
    impact: str
    status: str
    status_text: str
    status_detail: str
    last_maintenance: LastMaintenance | None
    next_maintenance: NextWindow
    vendors: list[str]
    hosts: list[str]


@dataclass
class InterfaceRow:
    name: str
    vendor: str | None
    vendor_name: str
    kind: str | None
    status: str
    status_text: str
    last_checked: str | None
    last_checked_text: str
    messages: list[str]
    #: Whole days left on the server's certificate (HTTPS), as last checked.
    cert_days_left: int | None = None


@dataclass
class GlitchRow:
    glitch_id: str
    title: str
    systems: list[str]
    system_keys: list[str]
    impact: str
    impact_assessed: bool
    opened_at: str
    opened_text: str
    status: str
    status_text: str
    hosts: list[str]
    run_id: str | None


@dataclass
class UpdateRow:
    """One security update the fleet needed: its CVEs, its deadline, the servers still
    waiting for it and those it was installed on."""

    advisory_id: str
    title: str
    cves: list[str]
    kev: bool
    severity: str
    due: str
    overdue: bool
    packages: list[str]
    open_hosts: list[str]
    closed_hosts: list[str]
    #: When the last server got it (only once none is waiting).
    closed_on: str | None


@dataclass
class ExposureSummary:
    text: str
    advisories: int
    hosts_exposed: int
    hosts_overdue: int
    next_due: str | None
    oldest_overdue_due: str | None
    systems_exposed: list[str]
    systems_overdue: list[str]
    hosts: list[str]
    #: The updates waiting (deadline first), then those installed in the last
    #: CLOSED_SHOWN_DAYS days (milepost.reports.status_sections).
    updates: list[UpdateRow] = field(default_factory=list)


@dataclass
class VendorRow:
    key: str
    name: str
    role: str
    period: str
    patch_met: int
    patch_missed: int
    patch_excepted: int
    patch_text: str
    availability_percent: float | None
    availability_target: float | None
    availability_met: bool | None
    availability_text: str
    questions: int
    questions_overdue: int
    questions_text: str
    #: The vendor's questions to the agency open past the agency's answer time.
    agency_questions_overdue: int = 0
    agency_questions_text: str = "None overdue"
    agency_overdue_ids: list[str] = field(default_factory=list)


@dataclass
class EmergencyRow:
    """An emergency change and its approval (milepost.change_control.emergencies)."""

    plan_id: str
    run_id: str
    advisory: str
    hosts: list[str]
    ran_at: str
    ran_text: str
    approve_by: str
    approve_by_text: str
    #: approved, approved late, awaiting, overdue
    state: str
    state_text: str
    approved_by: list[str]


@dataclass
class MonthPoint:
    month: str
    label: str
    good: int
    total: int
    percent: float | None


@dataclass
class DashboardStatus:
    program: str
    generated_at: str
    generated_text: str
    months: int
    integrity: Integrity
    systems: list[SystemRow]
    interfaces: list[InterfaceRow]
    glitches: list[GlitchRow]
    changes: list[ChangeRow]
    exposure: ExposureSummary
    vendors: list[VendorRow]
    emergencies: list[EmergencyRow] = field(default_factory=list)
    #: For engineers: lessons' follow-up actions past their due date, longest overdue first.
    overdue_actions: list[OverdueActionRow] = field(default_factory=list)
    patch_compliance: list[MonthPoint] = field(default_factory=list)
    availability: list[MonthPoint] = field(default_factory=list)
    #: Quality control's catch rate per month, with the checks to review and the flaky
    #: ones (milepost.oversight.catch_rate).
    qc_catch: CatchRate | None = None
    #: Warnings about ledger records left out because they could not be used
    #: (milepost.ledger.bodies), at most milepost.reports.status.MAX_SKIPPED_SHOWN
    #: of them; skipped_count: all.
    skipped_records: list[str] = field(default_factory=list)
    skipped_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
