"""The RUC program's vendors, read from inventory (``group_vars/all/vendors.yml``).

``milepost_vendors`` maps a vendor key (the ``milepost_vendor`` of the RUC groups it
operates) to its entry::

    milepost_vendors:
      harbor_payments:
        name: Harbor Payments Inc.
        role: payment processor      # one of ROLES
        contacts:
          - {name: Dana Ortiz, email: dana.ortiz@harborpayments.example,
             phone: "+1-555-0100", on_call: true}
        groups: [payment_gateway]    # inventory groups the vendor operates
        interfaces: [payments-api]   # names from milepost_interfaces
        commitments:
          patch_days: {critical: 15, high: 15, medium: 60, low: 90}
          question_response_hours: 48
          interface_availability_percent: 99.5

Every problem is one UserError line naming the vendor and the field. Every RUC host's
``milepost_vendor`` must be a vendor defined here; an inventory without
``milepost_vendors`` has no vendor data (older inventories still work).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import check_mapping, check_text, kind_of, shown
from milepost.inventory.reading import default_inventory, inventory_groups, inventory_variables
from milepost.inventory.severities import SEVERITIES

__all__ = [
    "ROLES",
    "Commitments",
    "Contact",
    "Vendor",
    "load_vendors",
    "parse_vendors",
    "vendor_of_host",
]

VENDORS_VAR = "milepost_vendors"
INTERFACES_VAR = "milepost_interfaces"
HOST_VENDOR_VAR = "milepost_vendor"
ROLES = (
    "account manager",
    "payment processor",
    "mileage device vendor",
    "file exchange operator",
    "reporting provider",
)
VENDOR_KEYS = ("name", "role", "contacts", "groups", "interfaces", "commitments")
CONTACT_KEYS = ("name", "email", "phone", "on_call")
COMMITMENT_KEYS = ("patch_days", "question_response_hours", "interface_availability_percent")
#: A vendor key: what milepost_vendor holds on the RUC groups.
VENDOR_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE = re.compile(r"\+?[0-9][0-9 ().-]{2,30}")
MAX_NAME = 200
MAX_EMAIL = 254
#: Names listed in an error message; the rest are counted.
MAX_NAMED = 10


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    phone: str | None = None
    on_call: bool = False


@dataclass(frozen=True)
class Commitments:
    """What the vendor's contract commits it to."""

    #: Days to patch per severity (critical, high, medium, low).
    patch_days: Mapping[str, int]
    question_response_hours: float
    interface_availability_percent: float


@dataclass(frozen=True)
class Vendor:
    key: str
    name: str
    role: str
    contacts: tuple[Contact, ...]
    groups: tuple[str, ...]
    interfaces: tuple[str, ...]
    commitments: Commitments

    @property
    def on_call(self) -> Contact | None:
        """The first on-call contact, else the first contact, else None."""
        for contact in self.contacts:
            if contact.on_call:
                return contact
        return self.contacts[0] if self.contacts else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "role": self.role,
            "contacts": [
                {"name": c.name, "email": c.email, "phone": c.phone, "on_call": c.on_call}
                for c in self.contacts
            ],
            "groups": list(self.groups),
            "interfaces": list(self.interfaces),
            "commitments": {
                "patch_days": dict(self.commitments.patch_days),
                "question_response_hours": self.commitments.question_response_hours,
                "interface_availability_percent": (self.commitments.interface_availability_percent),
            },
        }


def _named(items: Sequence[str]) -> str:
    shown_items = ", ".join(
        item if item.isprintable() and len(item) <= 100 else shown(item)
        for item in items[:MAX_NAMED]
    )
    more = len(items) - MAX_NAMED
    return shown_items + (f" and {more} more" if more > 0 else "")


def _required(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if entry.get(key) is None:
        raise UserError(f"{where}.{key} is missing: every vendor entry needs it")
    return entry[key]


def _text(value: Any, what: str, max_len: int = MAX_NAME) -> str:
    if not isinstance(value, str):
        raise UserError(f"{what} must be text, not {kind_of(value)} {shown(value)}")
    return check_text(value, what, max_len=max_len)


def _names(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UserError(f"{what} must be a list of names, not {kind_of(value)} {shown(value)}")
    return tuple(dict.fromkeys(_text(item, f"{what} entry", 100) for item in value))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{what} must be a number, not {kind_of(value)} {shown(value)}")
    return value


def _contact(value: Any, where: str) -> Contact:
    entry = check_mapping(value, where, CONTACT_KEYS)
    name = _text(entry.get("name"), f"{where}.name")
    email = _text(entry.get("email"), f"{where}.email", MAX_EMAIL)
    if not EMAIL.fullmatch(email):
        raise UserError(
            f"{where}.email {shown(email)} is not an e-mail address: use name@domain.example"
        )
    phone = entry.get("phone")
    if phone is not None:
        if not isinstance(phone, str):
            raise UserError(
                f"{where}.phone must be text, not {kind_of(phone)} {shown(phone)}: quote it"
            )
        phone = _text(phone, f"{where}.phone", 40)
        if not PHONE.fullmatch(phone):
            raise UserError(
                f"{where}.phone {shown(phone)} is not a phone number: digits, spaces and"
                " + ( ) . - only, e.g. '+1-555-0100'"
            )
    on_call = entry.get("on_call", False)
    if not isinstance(on_call, bool):
        raise UserError(f"{where}.on_call must be true or false, not {shown(on_call)}")
    return Contact(name=name, email=email, phone=phone, on_call=on_call)


def _commitments(value: Any, where: str) -> Commitments:
    entry = check_mapping(value, where, COMMITMENT_KEYS)
    for key in COMMITMENT_KEYS:
        if entry.get(key) is None:
            raise UserError(f"{where}.{key} is missing: give every commitment of the contract")
    days_value = entry["patch_days"]
    if not isinstance(days_value, Mapping):
        raise UserError(
            f"{where}.patch_days must map {', '.join(SEVERITIES)} to days,"
            f" not {kind_of(days_value)}"
        )
    unknown = sorted(str(name) for name in days_value if name not in SEVERITIES)
    if unknown:
        raise UserError(
            f"{where}.patch_days names {', '.join(shown(n, 40) for n in unknown)}:"
            f" use {', '.join(SEVERITIES)}"
        )
    days: dict[str, int] = {}
    for severity in SEVERITIES:
        number = days_value.get(severity)
        if number is None:
            raise UserError(
                f"{where}.patch_days.{severity} is missing: give days for every severity"
            )
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise UserError(
                f"{where}.patch_days.{severity} must be a whole number of days >= 0,"
                f" not {shown(number)}"
            )
        days[severity] = number
    hours = _number(entry["question_response_hours"], f"{where}.question_response_hours")
    if not hours > 0:
        raise UserError(f"{where}.question_response_hours must be more than 0, not {hours!r}")
    availability = _number(
        entry["interface_availability_percent"], f"{where}.interface_availability_percent"
    )
    if not 0 <= availability <= 100:
        raise UserError(
            f"{where}.interface_availability_percent must be from 0 to 100, not {availability!r}"
        )
    return Commitments(
        patch_days=days,
        question_response_hours=hours,
        interface_availability_percent=availability,
    )


def _vendor(key: Any, value: Any) -> Vendor:
    if not isinstance(key, str) or not VENDOR_KEY.fullmatch(key):
        raise UserError(
            f"{VENDORS_VAR} key {shown(key)} is not a vendor key: lower-case letters, digits"
            " and _ (the milepost_vendor of its groups, e.g. harbor_payments)"
        )
    where = f"{VENDORS_VAR}.{key}"
    entry = check_mapping(value, where, VENDOR_KEYS)
    name = _text(_required(entry, "name", where), f"{where}.name")
    role = _required(entry, "role", where)
    if role not in ROLES:
        raise UserError(f"{where}.role is {shown(role)}: use one of {', '.join(ROLES)}")
    contacts_value = _required(entry, "contacts", where)
    if not isinstance(contacts_value, list) or not contacts_value:
        raise UserError(
            f"{where}.contacts must be a list of at least one {{name, email, phone, on_call}},"
            f" not {kind_of(contacts_value)}"
        )
    contacts = tuple(
        _contact(item, f"{where}.contacts[{index}]") for index, item in enumerate(contacts_value)
    )
    return Vendor(
        key=key,
        name=name,
        role=str(role),
        contacts=contacts,
        groups=_names(entry.get("groups"), f"{where}.groups"),
        interfaces=_names(entry.get("interfaces"), f"{where}.interfaces"),
        commitments=_commitments(_required(entry, "commitments", where), f"{where}.commitments"),
    )


def _interfaces(value: Any) -> dict[str, str | None]:
    """{interface name: its vendor or None} from milepost_interfaces (malformed entries are
    the inventory check's to report)."""
    found: dict[str, str | None] = {}
    for entry in value if isinstance(value, list) else ():
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            vendor = entry.get("vendor")
            found[entry["name"]] = str(vendor) if vendor is not None else None
    return found


def parse_vendors(
    value: Any,
    *,
    groups: Mapping[str, frozenset[str]],
    interfaces: Any = None,
    host_vendors: Mapping[str, str] | None = None,
) -> dict[str, Vendor]:
    """The vendors of ``milepost_vendors`` checked against the inventory: its ``groups``
    ({group: hosts}), its ``milepost_interfaces`` and each RUC host's milepost_vendor."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(
            f"{VENDORS_VAR} must map vendor keys to vendor entries, not {kind_of(value)}"
        )
    vendors = {str(key): _vendor(key, entry) for key, entry in value.items()}
    known_interfaces = _interfaces(interfaces)
    owners = dict(host_vendors or {})
    for vendor in vendors.values():
        where = f"{VENDORS_VAR}.{vendor.key}"
        for group in vendor.groups:
            if group not in groups:
                raise UserError(
                    f"{where}.groups names {shown(group)}, which is not an inventory group"
                    f" (groups: {_named(sorted(g for g in groups if g != 'all'))})"
                )
            others = sorted(
                host for host in groups[group] if host in owners and owners[host] != vendor.key
            )
            if others:
                raise UserError(
                    f"{where}.groups names {group}, but its host(s) {_named(others)} have"
                    f" milepost_vendor {_named([owners[others[0]]])}: a group is operated by one"
                    " vendor"
                )
        for interface in vendor.interfaces:
            if interface not in known_interfaces:
                listed = _named(sorted(known_interfaces)) or "none are defined"
                raise UserError(
                    f"{where}.interfaces names {shown(interface)}, which is not in"
                    f" {INTERFACES_VAR} ({listed})"
                )
            operator = known_interfaces[interface]
            if operator is not None and operator != vendor.key:
                raise UserError(
                    f"{where}.interfaces names {interface}, but {INTERFACES_VAR} says"
                    f" vendor {shown(operator)} runs it"
                )
    undefined: dict[str, list[str]] = {}
    for host, key in owners.items():
        if key not in vendors:
            undefined.setdefault(key, []).append(host)
    if undefined:
        key, hosts = next(iter(sorted(undefined.items())))
        raise UserError(
            f"host(s) {_named(sorted(hosts))} have milepost_vendor {shown(key)}, which"
            f" {VENDORS_VAR} does not define (defined: {_named(sorted(vendors)) or 'none'})"
        )
    return vendors


def _sources(sources: Sequence[Path] | None) -> list[Path]:
    return list(sources) if sources else default_inventory()


def _host_vendors(per_host: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    found = {}
    for host, values in per_host.items():
        key = values.get(HOST_VENDOR_VAR)
        if key is not None and str(key).strip():
            found[host] = str(key).strip()
    return found


def load_vendors(sources: Sequence[Path] | None = None) -> dict[str, Vendor]:
    """The inventory's vendors (default: the inventory ansible.cfg names), {key: Vendor}.
    Empty if the inventory does not set milepost_vendors. UserError (one line) for bad data."""

    paths = _sources(sources)
    controller, per_host = inventory_variables(
        paths, (VENDORS_VAR, INTERFACES_VAR, HOST_VENDOR_VAR)
    )
    value = controller.get(VENDORS_VAR)
    if value is None:
        return {}
    return parse_vendors(
        value,
        groups=inventory_groups(paths),
        interfaces=controller.get(INTERFACES_VAR),
        host_vendors=_host_vendors(per_host),
    )


def vendor_of_host(sources: Sequence[Path] | None = None) -> dict[str, str]:
    """{RUC host: its milepost_vendor} (hosts without one are left out)."""

    _, per_host = inventory_variables(_sources(sources), (HOST_VENDOR_VAR,))
    return _host_vendors(per_host)
