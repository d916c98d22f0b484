"""The change-control rules of an inventory group (``milepost_change_control``), checked
where the inventory is checked (before any host is touched) and where plans are approved
and applied (milepost.change_control)::

    milepost_change_control:
      approvals: 1                 # signatures by people other than the plan's author
      emergency_within_hours: 24   # an emergency run may come first, approved within this
      allowed_signers: allowed_signers.txt   # group all only; relative to the inventory
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import shown

SETTINGS_VAR = "milepost_change_control"
KEYS = ("approvals", "emergency_within_hours", "allowed_signers")
#: Most approvals a group may ask for, and the longest an emergency may wait for one.
MAX_APPROVALS = 5
MAX_EMERGENCY_HOURS = 24 * 14


@dataclass(frozen=True)
class Rules:
    approvals: int = 0
    emergency_within_hours: int = 24


def _count(value: Any, what: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise UserError(f"{what} is {shown(value)}: give a whole number from 0 to {most}")
    return value


def parse_rules(value: Any, where: str) -> Rules:
    if value is None:
        return Rules()
    if not isinstance(value, Mapping):
        raise UserError(f"{SETTINGS_VAR} ({where}) must be a mapping, not {shown(value)}")
    unknown = set(value) - set(KEYS)
    if unknown:
        raise UserError(
            f"{SETTINGS_VAR} ({where}) has unknown key {shown(sorted(unknown)[0])}: use"
            " approvals, emergency_within_hours, allowed_signers"
        )
    return Rules(
        approvals=_count(value.get("approvals", 0), f"{SETTINGS_VAR}.approvals ({where})",
                         MAX_APPROVALS),
        emergency_within_hours=_count(
            value.get("emergency_within_hours", 24),
            f"{SETTINGS_VAR}.emergency_within_hours ({where})",
            MAX_EMERGENCY_HOURS,
        ),
    )  # fmt: skip
