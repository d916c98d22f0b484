"""The controls of docs/SAFETY.md that read the ledger, for the plugins every run passes
through (the action plugin milepost_apt_pin; the kill switch is milepost.patching.kill_switch).

The ledger is opened read-only, so a run that only reads never creates one; a ledger that
is configured but cannot be read raises UserError, and the plugin fails the host (fail
closed: a check that could not run never counts as passed).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from milepost.inventory.debian import DEBIAN_VERSION
from milepost.patching import play_cache

#: An override a run used (a named downgrade, a patch exception): the callback records it.
OVERRIDE_KIND = "safety_override"


def security_floor(
    host: str, packages: Iterable[str], on: date, url: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """For each of ``packages``: the advisories in the ledger that fix it, as
    [{advisory, fixed, exception}], exception being the id of an unexpired patch
    exception that covers ``host`` for that advisory (or None). The ledger is read once per
    play (milepost.patching.play_cache)."""
    wanted = set(packages)
    if not wanted:
        return {}
    advisories, exceptions = play_cache.security_data(url)
    floor: dict[str, list[dict[str, Any]]] = {}
    for advisory in advisories.values():
        for name, fixed in advisory.packages.items():
            if name not in wanted or fixed is None or not DEBIAN_VERSION.fullmatch(str(fixed)):
                continue
            cover = next((e for e in exceptions if e.covers(host, advisory.advisory_id, on)), None)
            floor.setdefault(name, []).append(
                {
                    "advisory": advisory.advisory_id,
                    "fixed": str(fixed),
                    "exception": cover.exception_id if cover else None,
                }
            )
    return floor
