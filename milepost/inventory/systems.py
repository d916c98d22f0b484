"""The RUC program's systems in plain words, read from inventory (``group_vars/all``).

A system is an inventory group of RUC hosts (payment_gateway, account_management, ...).
``milepost_systems`` says, for the people who read the dashboard and the notices, what each
one is called, what it does for customers and what customers may notice while it is
maintained::

    milepost_systems:
      payment_gateway:
        name: Payments
        serves: Customers pay their road charge by card or bank transfer.
        impact: Payments may fail for a few minutes; customers can try again later.

Every key must be an inventory group holding RUC hosts. A RUC group the variable does not
describe is still a system, named by its group, with a generic impact; an inventory without
``milepost_systems`` lists every group of RUC hosts that way. Each problem is one UserError
line naming the key and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import check_mapping, check_text, kind_of, shown
from milepost.inventory.reading import default_inventory, inventory_groups, inventory_variables
from milepost.inventory.vendors import HOST_VENDOR_VAR
from milepost.inventory.windows import Blackout, Window, parse_blackouts, parse_window

__all__ = [
    "System",
    "load_systems",
    "parse_systems",
    "program_name",
    "system_window",
    "systems_of_hosts",
]

SYSTEMS_VAR = "milepost_systems"
#: How the dashboard and the notices name the program (group all).
PROGRAM_VAR = "milepost_program_name"
DEFAULT_PROGRAM = "Road Usage Charge program"
WINDOW_VAR = "milepost_window"
BLACKOUTS_VAR = "milepost_blackouts"
RUC_GROUP = "ruc"
SYSTEM_KEYS = ("name", "serves", "impact")
#: Groups that are never a system of their own.
NOT_SYSTEMS = frozenset({"all", "ungrouped", RUC_GROUP})
MAX_NAME = 100
MAX_TEXT = 400
GENERIC_SERVES = "Part of the Road Usage Charge service."
GENERIC_IMPACT = "Customers may notice short delays while it is maintained."


@dataclass(frozen=True)
class System:
    """One RUC system: its inventory group, its plain-language description, its hosts and
    the vendors (milepost_vendor) that operate them."""

    key: str
    name: str
    serves: str
    impact: str
    hosts: tuple[str, ...]
    vendors: tuple[str, ...] = ()


def _text(entry: Mapping[str, Any], key: str, field: str, limit: int) -> str:
    value = entry.get(field)
    where = f"{SYSTEMS_VAR}.{key}.{field}"
    if value is None:
        raise UserError(f"{where} is missing: say it in plain words for non-engineers")
    if not isinstance(value, str):
        raise UserError(f"{where} must be text, not {kind_of(value)}")
    return check_text(" ".join(value.split()), where, max_len=limit)


def parse_systems(
    value: Any,
    *,
    groups: Mapping[str, frozenset[str]],
    host_vendors: Mapping[str, str] | None = None,
) -> dict[str, System]:
    """The systems of ``milepost_systems`` checked against the inventory's ``groups``
    ({group: hosts}); every other group of RUC hosts is added with generic words.
    Ordered as milepost_systems lists them, then the others by name."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise UserError(
            f"{SYSTEMS_VAR} must map inventory groups to {{name, serves, impact}},"
            f" not {kind_of(value)}"
        )
    ruc = groups.get(RUC_GROUP, frozenset())
    owners = dict(host_vendors or {})

    def vendors_of(hosts: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted({owners[h] for h in hosts if h in owners}))

    found: dict[str, System] = {}
    for raw_key, entry in value.items():
        key = str(raw_key)
        if key not in groups or key in NOT_SYSTEMS:
            listed = ", ".join(sorted(g for g in groups if g not in NOT_SYSTEMS)) or "none"
            raise UserError(
                f"{SYSTEMS_VAR} names {shown(key)}, which is not an inventory group of RUC"
                f" hosts (groups: {listed})"
            )
        entry = check_mapping(entry, f"{SYSTEMS_VAR}.{key}", SYSTEM_KEYS)
        members = tuple(sorted(groups[key]))
        found[key] = System(
            key=key,
            name=_text(entry, key, "name", MAX_NAME),
            serves=_text(entry, key, "serves", MAX_TEXT),
            impact=_text(entry, key, "impact", MAX_TEXT),
            hosts=members,
            vendors=vendors_of(members),
        )
    described = {host for system in found.values() for host in system.hosts}
    for group in sorted(groups):
        hosts = groups[group]
        if group in NOT_SYSTEMS or group in found or not hosts or not hosts <= ruc:
            continue
        if hosts <= described:
            continue  # a grouping of hosts another system already holds
        found[group] = System(
            key=group,
            name=group.replace("_", " ").capitalize(),
            serves=GENERIC_SERVES,
            impact=GENERIC_IMPACT,
            hosts=tuple(sorted(hosts)),
            vendors=vendors_of(hosts),
        )
    return found


def load_systems(sources: Sequence[Path] | None = None) -> dict[str, System]:
    """The inventory's systems (default: the inventory ansible.cfg names), {group: System}.
    UserError (one line) for bad data or an unreadable inventory."""

    paths = list(sources) if sources else default_inventory()
    controller, per_host = inventory_variables(paths, (SYSTEMS_VAR, HOST_VENDOR_VAR))
    host_vendors = {
        host: str(values[HOST_VENDOR_VAR])
        for host, values in per_host.items()
        if values.get(HOST_VENDOR_VAR)
    }
    return parse_systems(
        controller.get(SYSTEMS_VAR), groups=inventory_groups(paths), host_vendors=host_vendors
    )


def systems_of_hosts(systems: Mapping[str, System], hosts: Iterable[str]) -> list[System]:
    """The systems that hold any of ``hosts``, in the systems' order."""
    wanted = set(hosts)
    return [system for system in systems.values() if wanted.intersection(system.hosts)]


def program_name(value: Any) -> str:
    """The program's name from milepost_program_name (None: the default). UserError if it
    is not one line of text."""
    if value is None:
        return DEFAULT_PROGRAM
    if not isinstance(value, str):
        raise UserError(f"{PROGRAM_VAR} must be text, not {kind_of(value)}")
    return check_text(value, PROGRAM_VAR, max_len=MAX_NAME)


def system_window(
    system: System, per_host: Mapping[str, Mapping[str, Any]]
) -> tuple[Window | None, list[Blackout]]:
    """The system's maintenance window and blackouts (milepost_window, milepost_blackouts):
    those of its first host that has a window (a group's hosts share their group's), else
    no window and the first blackouts found. UserError (one line) if they are malformed."""
    blackouts: list[Blackout] = []
    for host in system.hosts:
        values = per_host.get(host) or {}
        if values.get(WINDOW_VAR):
            return (
                parse_window(values[WINDOW_VAR], group=system.key),
                parse_blackouts(values.get(BLACKOUTS_VAR), group=system.key),
            )
        if values.get(BLACKOUTS_VAR) and not blackouts:
            blackouts = parse_blackouts(values[BLACKOUTS_VAR], group=system.key)
    return None, blackouts
