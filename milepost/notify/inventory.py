"""What the notices read from the inventory, in one pass: milepost_notify, the systems in
plain words, the vendors (for their contacts), each system's window and blackouts, and the
secret values no notice may show."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from milepost.ansible.vault_values import vault_values
from milepost.inventory.reading import (
    _init_plugins,
    _loader,
    _quiet_ansible,
    _use_project_config,
    default_inventory,
    inventory_groups,
    inventory_variables,
)
from milepost.inventory.systems import (
    BLACKOUTS_VAR,
    PROGRAM_VAR,
    SYSTEMS_VAR,
    WINDOW_VAR,
    System,
    parse_systems,
    program_name,
    system_window,
)
from milepost.inventory.vendors import (
    HOST_VENDOR_VAR,
    INTERFACES_VAR,
    VENDORS_VAR,
    Vendor,
    parse_vendors,
)
from milepost.inventory.windows import Blackout, Window
from milepost.notify.config import NOTIFY_VAR, NotifyConfig, parse_notify_config
from milepost.paths import project_root

__all__ = ["NotifySetup", "load_setup"]

#: Names whose values are secret wherever they appear in milepost_notify.
SECRET_KEY = re.compile(r"(?i)(password|passwd|passphrase|secret|token|api[_-]?key)")
#: Ansible's convention for variables kept in a vault file (vault_<name>).
VAULT_PREFIX = "vault_"


@dataclass(frozen=True)
class NotifySetup:
    """Everything a notice needs from the inventory."""

    config: NotifyConfig
    #: milepost_program_name
    program: str
    systems: dict[str, System]
    vendors: dict[str, Vendor]
    #: {system key: (its window or None, its blackouts)}
    windows: dict[str, tuple[Window | None, list[Blackout]]]
    #: Values to mask in every notice and reason (never shown, never recorded).
    secrets: tuple[str, ...] = field(repr=False)


def _secret_values(value: Any, key: str = "") -> Iterator[str]:
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from _secret_values(item, str(name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item, key)
    elif isinstance(value, str) and SECRET_KEY.search(key):
        yield value


def _vault_values(sources: Sequence[Path]) -> list[str]:
    """The controller's vault values: variables encrypted with ansible-vault (inline or in
    an encrypted file, milepost.ansible.vault_values) and variables named vault_* (templated). A
    value that cannot be decrypted is left out (then it cannot reach a notice either)."""

    _use_project_config()
    found: list[str] = []
    with _quiet_ansible():
        _init_plugins()
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager

        try:
            loader = _loader()
            inventory = InventoryManager(loader=loader, sources=[str(s) for s in sources])
            variables = VariableManager(loader=loader, inventory=inventory)
            all_vars = variables.get_vars(host=inventory.get_host("localhost"))
        except AnsibleError:
            return []
        found.extend(vault_values(all_vars))
        templar = Templar(loader=loader, variables=all_vars)
        for name, value in all_vars.items():
            if not str(name).startswith(VAULT_PREFIX):
                continue
            try:
                plain = templar.template(value)
            except AnsibleError:
                continue
            found.extend(str(v) for v in _leaves(plain))
    return found


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value


def load_setup(sources: Sequence[Path] | None = None) -> NotifySetup | None:
    """The inventory's notice settings, systems, vendors and windows; None when
    milepost_notify is not set. UserError (one line) for bad data."""

    paths = list(sources) if sources else default_inventory()
    controller, per_host = inventory_variables(
        paths,
        (
            NOTIFY_VAR,
            SYSTEMS_VAR,
            VENDORS_VAR,
            INTERFACES_VAR,
            HOST_VENDOR_VAR,
            WINDOW_VAR,
            BLACKOUTS_VAR,
            PROGRAM_VAR,
        ),
    )
    raw = controller.get(NOTIFY_VAR)
    if raw is None:
        return None
    config = parse_notify_config(raw, root=project_root())
    groups = inventory_groups(paths)
    host_vendors = {
        host: str(values[HOST_VENDOR_VAR]).strip()
        for host, values in per_host.items()
        if str(values.get(HOST_VENDOR_VAR) or "").strip()
    }
    systems = parse_systems(controller.get(SYSTEMS_VAR), groups=groups, host_vendors=host_vendors)
    vendors = (
        parse_vendors(
            controller[VENDORS_VAR],
            groups=groups,
            interfaces=controller.get(INTERFACES_VAR),
            host_vendors=host_vendors,
        )
        if controller.get(VENDORS_VAR) is not None
        else {}
    )
    secrets = [*config.secrets(), *_secret_values(raw), *_vault_values(paths)]
    return NotifySetup(
        config=config,
        program=program_name(controller.get(PROGRAM_VAR)),
        systems=systems,
        vendors=vendors,
        windows={key: system_window(system, per_host) for key, system in systems.items()},
        secrets=tuple(dict.fromkeys(s for s in secrets if s)),
    )
