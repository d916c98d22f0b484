"""The controls of docs/SAFETY.md that read the ledger, for the plugins every run passes
through (the action plugin milepost_apt_pin; the kill switch is milepost.kill_switch).

The ledger is opened read-only, so a run that only reads never creates one; a ledger that
is configured but cannot be read raises UserError, and the plugin fails the host (fail
closed: a check that could not run never counts as passed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from milepost.errors import UserError
from milepost.ledger.config import ledger_url

#: An override a run used (a named downgrade, a patch exception): the callback records it.
OVERRIDE_KIND = "safety_override"
_VERSION = re.compile(r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~:-]*")


def open_existing(url: str | None = None) -> Any:
    """The ledger to read, or None when it is a SQLite file that does not exist yet."""
    from milepost.ledger import Ledger

    url = url or ledger_url()
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"the ledger URL {url!r} is not a SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        if not Path(parsed.database).exists():
            return None
    return Ledger.open(url)


def security_floor(
    host: str, packages: Iterable[str], on: date, url: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """For each of ``packages``: the advisories in the ledger that fix it, as
    [{advisory, fixed, exception}], exception being the id of an unexpired patch
    exception that covers ``host`` for that advisory (or None). The ledger is read once per
    play (milepost.play_cache)."""
    from milepost import play_cache

    wanted = set(packages)
    if not wanted:
        return {}
    advisories, exceptions = play_cache.security_data(url)
    floor: dict[str, list[dict[str, Any]]] = {}
    for advisory in advisories.values():
        for name, fixed in advisory.packages.items():
            if name not in wanted or fixed is None or not _VERSION.fullmatch(str(fixed)):
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
