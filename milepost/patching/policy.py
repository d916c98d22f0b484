"""The agency's patch policy, read from inventory (``group_vars/all/patch_policy.yml``).

``milepost_patch_policy``: days to patch per severity and the emergency target::

    milepost_patch_policy:
      days:
        kev: 14          # a KEV entry without a catalog due date
        critical: 30     # PCI DSS 4.0 6.3.3: critical patches within one month
        high: 30
        medium: 90
        low: 180
      emergency_target_hours: 24

A KEV entry's due date is the catalog's ``dueDate`` (CISA BOD 22-01). A group or host may
set stricter days: the policy of a host is read with that host's variables, and a value
larger than the agency's default is refused, never loosened. The patch days of the
host's vendor's contract (``milepost_vendors``, milepost.inventory.vendors) cut them further.

``milepost_kev_products``: which KEV vendorProject/product pairs are software the agency
runs, and the Debian packages that carry it::

    milepost_kev_products:
      - vendor_project: OpenSSL
        product: OpenSSL
        packages: [libssl3, openssl]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.debian import PACKAGE_NAME
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.inventory.vendors import HOST_VENDOR_VAR, load_vendors

#: Days to patch when the inventory says nothing (BOD 22-01, PCI DSS 6.3.3, CIS 7.3/7.4).
DEFAULT_DAYS: dict[str, int] = {"kev": 14, "critical": 30, "high": 30, "medium": 90, "low": 180}
DEFAULT_EMERGENCY_HOURS = 24
POLICY_VAR = "milepost_patch_policy"
KEV_PRODUCTS_VAR = "milepost_kev_products"


@dataclass(frozen=True)
class PatchPolicy:
    """Days to patch per severity (and ``kev``), and the emergency target in hours."""

    days: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    emergency_target_hours: int = DEFAULT_EMERGENCY_HOURS

    def due(self, *, severity: str, kev: bool, published: date, kev_due: date | None) -> date:
        """The date by which a host must be patched (the last date of the calendar,
        9999-12-31, when it would fall after it)."""
        if kev and kev_due is not None:
            return kev_due
        days = self.days["kev"] if kev else self.days.get(severity, self.days["critical"])
        try:
            return published + timedelta(days=days)
        except OverflowError:
            return date.max


@dataclass(frozen=True)
class KevProduct:
    """A KEV vendorProject/product the agency runs, and the packages that carry it."""

    vendor_project: str
    product: str
    packages: tuple[str, ...]

    def matches(self, vendor_project: str, product: str) -> bool:
        return (
            self.vendor_project.casefold() == vendor_project.strip().casefold()
            and self.product.casefold() == product.strip().casefold()
        )


@dataclass(frozen=True)
class PatchSettings:
    """What the inventory says: the policy for all hosts, each host's own, the KEV mapping."""

    policy: PatchPolicy
    host_policies: Mapping[str, PatchPolicy]
    kev_products: tuple[KevProduct, ...]

    def for_host(self, host: str) -> PatchPolicy:
        return self.host_policies.get(host, self.policy)


#: Most days or hours a policy may give (a hundred years of days).
MAX_DAYS = 36_500


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise UserError(
            f"{what} must be a whole number of days or hours from 0 to {MAX_DAYS},"
            f" not {_shown(value)}"
        )
    return value


def _shown(value: Any) -> str:
    return shown(value)


def parse_policy(value: Any, where: str, base: PatchPolicy | None = None) -> PatchPolicy:
    """A PatchPolicy from the inventory's ``milepost_patch_policy`` (None: the defaults).
    With ``base`` (the agency's policy), a host may only be stricter."""
    if value is None:
        return base or PatchPolicy()
    if not (where.isprintable() and len(where) <= 200):
        where = _shown(where)  # a host name with a line break: still one line
    if not isinstance(value, Mapping):
        raise UserError(
            f"{POLICY_VAR} ({where}) must be a mapping with days and emergency_target_hours"
        )
    unknown = sorted(set(map(str, value)) - {"days", "emergency_target_hours"})
    if unknown:
        raise UserError(
            f"{POLICY_VAR} ({where}) has unknown keys {', '.join(map(_shown, unknown))}:"
            " use days, emergency_target_hours"
        )
    days = dict(base.days if base else DEFAULT_DAYS)
    given = value.get("days") or {}
    if not isinstance(given, Mapping):
        raise UserError(f"{POLICY_VAR}.days ({where}) must map severities to days")
    for name, number in given.items():
        if name not in DEFAULT_DAYS:
            raise UserError(
                f"{POLICY_VAR}.days ({where}) names {_shown(name)}: use {', '.join(DEFAULT_DAYS)}"
            )
        days[name] = _whole(number, f"{POLICY_VAR}.days.{name} ({where})")
    hours = _whole(
        value.get(
            "emergency_target_hours",
            base.emergency_target_hours if base else DEFAULT_EMERGENCY_HOURS,
        ),
        f"{POLICY_VAR}.emergency_target_hours ({where})",
    )
    if base is not None:
        looser = [name for name in days if days[name] > base.days[name]]
        if looser:
            raise UserError(
                f"{POLICY_VAR} ({where}) allows more days than the agency's policy for"
                f" {', '.join(looser)}: a group or host may only be stricter"
            )
    return PatchPolicy(days=days, emergency_target_hours=hours)


def parse_kev_products(value: Any) -> tuple[KevProduct, ...]:
    """The inventory's ``milepost_kev_products`` as KevProducts (UserError if malformed)."""

    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise UserError(
            f"{KEV_PRODUCTS_VAR} must be a list of {{vendor_project, product, packages}}"
        )
    products = []
    for number, entry in enumerate(value, 1):
        where = f"{KEV_PRODUCTS_VAR} entry {number}"
        if not isinstance(entry, Mapping):
            raise UserError(f"{where} must be a mapping with vendor_project, product, packages")
        vendor_project, product = entry.get("vendor_project"), entry.get("product")
        packages = entry.get("packages")
        if not isinstance(vendor_project, str) or not vendor_project.strip():
            raise UserError(f"{where} needs vendor_project (as in the KEV catalog)")
        if not isinstance(product, str) or not product.strip():
            raise UserError(f"{where} needs product (as in the KEV catalog)")
        if isinstance(packages, str) or not isinstance(packages, Sequence) or not packages:
            raise UserError(f"{where} needs packages: a list of Debian package names")
        for name in packages:
            if not isinstance(name, str) or not PACKAGE_NAME.fullmatch(name):
                raise UserError(f"{where} names {_shown(name)}, which is not a Debian package name")
        products.append(
            KevProduct(vendor_project.strip(), product.strip(), tuple(dict.fromkeys(packages)))
        )
    return tuple(products)


def stricter(policy: PatchPolicy, days: Mapping[str, int]) -> PatchPolicy:
    """``policy`` with each severity's days cut to ``days`` where those are fewer (a
    vendor's contract)."""
    merged = {name: min(number, days.get(name, number)) for name, number in policy.days.items()}
    return PatchPolicy(days=merged, emergency_target_hours=policy.emergency_target_hours)


def load(sources: Sequence[Path] | None = None) -> PatchSettings:
    """The patch settings of the inventory (default: the one ansible.cfg names). A host's
    policy is its group's (stricter only), cut further by the patch days its vendor's
    contract commits to (milepost_vendors)."""

    chosen = list(sources) if sources else default_inventory()
    names = (POLICY_VAR, KEV_PRODUCTS_VAR, HOST_VENDOR_VAR)
    controller, hosts = inventory_variables(chosen, names)
    vendors = load_vendors(chosen)
    policy = parse_policy(controller.get(POLICY_VAR), "group all")
    host_policies = {}
    for host, values in hosts.items():
        own = policy
        if values.get(POLICY_VAR) is not None and values.get(POLICY_VAR) != controller.get(
            POLICY_VAR
        ):
            own = parse_policy(values.get(POLICY_VAR), f"host {host}", base=policy)
        vendor = vendors.get(str(values.get(HOST_VENDOR_VAR)))
        if vendor is not None:
            own = stricter(own, vendor.commitments.patch_days)
        if own != policy:
            host_policies[host] = own
    return PatchSettings(
        policy=policy,
        host_policies=host_policies,
        kev_products=parse_kev_products(controller.get(KEV_PRODUCTS_VAR)),
    )
