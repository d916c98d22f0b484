"""The controller's reading of a host probe (the milepost_probe module's result).

The cycle decides from the probe which steps have work to do; a probe it cannot read must
never count as "nothing to do", so check() names what is wrong and the action plugin fails
the host with that one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Each key of a probe and the type its value must have (None allowed where listed).
SHAPE: dict[str, tuple[type, ...]] = {
    "dpkg": (dict,),
    "ruc_packages": (dict,),
    "pins_pending": (list, type(None)),
    "os_upgrades": (list, type(None)),
    "services": (dict,),
    "free_mb": (dict,),
    "reboot_required": (bool,),
    "lock": (dict, type(None)),
    "apt_cache_age": (int, type(None)),
    "unreadable": (dict,),
    "asked": (dict,),
}
DPKG_SHAPE = ("audit", "half_installed", "lock_holders")


#: What the probe may fail to read and still be decided from: APT's cache cannot be opened
#: while dpkg is interrupted (the lock step repairs it); the plans are then null, and the
#: roles that use them run and read the cache themselves.
MAY_BE_UNREADABLE = frozenset({"apt_cache"})


def check(probe: Any) -> str | None:
    """Why ``probe`` cannot be decided from, or None when it can."""
    if not isinstance(probe, Mapping):
        return "the probe returned no result"
    wrong = [
        key
        for key, types in SHAPE.items()
        if key not in probe or not isinstance(probe[key], types) or isinstance(probe[key], str)
    ]
    if not wrong:
        dpkg = probe["dpkg"]
        wrong = [f"dpkg.{key}" for key in DPKG_SHAPE if not isinstance(dpkg.get(key), list)]
        wrong += [
            f"free_mb.{path}"
            for path, value in probe["free_mb"].items()
            if not isinstance(value, int) or isinstance(value, bool)
        ]
    if wrong:
        return f"the probe's {', '.join(wrong)} cannot be read"
    unreadable = {k: v for k, v in probe["unreadable"].items() if k not in MAY_BE_UNREADABLE}
    if unreadable:
        parts = [f"{what} ({why})" for what, why in sorted(unreadable.items())]
        return f"the probe could not read {'; '.join(parts)}"
    return None


def free_space_problem(host: str, free_mb: Mapping[str, int], min_mb: int) -> str | None:
    """The one-line refusal when a checked filesystem has less than ``min_mb`` MiB free."""
    short = [f"{path} has {mb} MiB free" for path, mb in free_mb.items() if mb < min_mb]
    if not short:
        return None
    return (
        f"not enough free disk space on {host}: {', '.join(short)}, {min_mb} MiB needed;"
        " free some space (apt-get clean, old logs) and run again"
    )
