"""The program's phase (``milepost_phase``): the one rule everything that reads it uses.

``milepost_phase`` is set in group_vars/all (the whole program) or on a RUC group (one
system launching), in either of two forms::

    milepost_phase: hypercare                   # until someone sets it back to normal
    milepost_phase:                             # hypercare from launch to end, both days
      name: hypercare                           # included (UTC); normal before and after
      launch: 2026-12-01
      end: 2027-01-15

Hypercare, the early days and months after a launch, makes every run stricter
(docs/operations.md). With dates it starts on its launch day and ends on its own after its
end day: :func:`phase_at` is the only place that decides, and it takes ``now``, so the
command line, the playbooks (the filters of plugins/filter/milepost_phase.py), the ledger
callback and the daily review all agree. A mapping whose end is before its launch, an
unknown name or key, or a date that is not YYYY-MM-DD is refused in one line
(:func:`parse_phase`; the inventory check makes the same check).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import check_date, check_mapping, kind_of, shown

__all__ = ["HYPERCARE", "NORMAL", "PHASES", "PHASE_VAR", "Phase", "parse_phase", "phase_at"]

PHASE_VAR = "milepost_phase"
NORMAL = "normal"
HYPERCARE = "hypercare"
#: The program's phases: hypercare, the early days and months after a launch, makes every
#: run stricter.
PHASES = (NORMAL, HYPERCARE)
PHASE_KEYS = ("name", "launch", "end")


@dataclass(frozen=True)
class Phase:
    """A phase as the inventory gives it: its name, and the days it holds (None: open)."""

    name: str
    launch: date | None = None
    end: date | None = None

    def at(self, now: datetime | date | None = None) -> str:
        """The phase in force on ``now``'s day (UTC; default today): hypercare only from
        its launch day to its end day, both included; normal otherwise."""
        if self.name != HYPERCARE:
            return NORMAL
        day = _day(now)
        if self.launch is not None and day < self.launch:
            return NORMAL
        if self.end is not None and day > self.end:
            return NORMAL
        return HYPERCARE


def _day(now: datetime | date | None) -> date:
    if now is None:
        return datetime.now(UTC).date()
    if isinstance(now, datetime):
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC).date()
    return now


def _date(value: Any, what: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        raise UserError(
            f"{what} {shown(str(value))} is not a date: use YYYY-MM-DD, e.g. 2026-12-01"
        )
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise UserError(f"{what} must be a date YYYY-MM-DD, not {kind_of(value)} {shown(value)}")
    return check_date(value, what)


def _name(value: Any, what: str) -> str:
    if value is None:
        return NORMAL
    if not isinstance(value, str) or value not in PHASES:
        raise UserError(
            f"{what} {shown(value, 40)} is not one of {', '.join(PHASES)}: set it in"
            " group_vars/all or on a RUC group"
        )
    return value


def parse_phase(value: Any, where: str = PHASE_VAR) -> Phase:
    """A milepost_phase value (a name, a mapping {name, launch, end}, or None: normal)
    checked. UserError (one line naming ``where``) otherwise."""
    if value is None or isinstance(value, str):
        return Phase(_name(value or None, where))
    if not isinstance(value, Mapping):
        raise UserError(
            f"{where} must be {' or '.join(PHASES)}, or a mapping with name, launch, end;"
            f" not {kind_of(value)}"
        )
    entry = check_mapping(value, where, PHASE_KEYS)
    name = _name(entry.get("name"), f"{where}.name")
    launch = _date(entry.get("launch"), f"{where}.launch")
    end = _date(entry.get("end"), f"{where}.end")
    if (launch is not None or end is not None) and name != HYPERCARE:
        raise UserError(f"{where} has dates but name {name}: dates are for hypercare")
    if launch is not None and end is not None and end < launch:
        raise UserError(
            f"{where}.end {end.isoformat()} is before its launch {launch.isoformat()}:"
            " give an end on or after the launch"
        )
    return Phase(name, launch, end)


def phase_at(value: Any, now: datetime | date | None = None, where: str = PHASE_VAR) -> str:
    """The phase a milepost_phase ``value`` puts in force on ``now``'s day (UTC; default
    today): normal or hypercare. UserError (one line) for a malformed value."""
    return parse_phase(value, where).at(now)
