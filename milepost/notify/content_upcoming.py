"""What a notice of upcoming maintenance says (milepost.notify.content): the openings of the
systems' maintenance windows it tells of, or the work starting now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.inventory.systems import System, systems_of_hosts
from milepost.notify.content import Content, _base, human_time
from milepost.notify.upcoming import Opening, current_window, openings

if TYPE_CHECKING:
    from milepost.notify.inventory import NotifySetup

__all__ = ["upcoming", "upcoming_openings"]

AGREED_TIME = "at a time agreed with operations"
WHEN_DONE = "the work is done"


def upcoming_openings(
    setup: NotifySetup,
    *,
    now: datetime,
    within_hours: float = 48,
    systems: Sequence[str] | None = None,
    hosts: Sequence[str] | None = None,
    starting_now: bool = False,
) -> list[Opening]:
    """The openings a notice of upcoming maintenance tells of, in systems' order.

    Without ``starting_now``: each window opening within ``within_hours`` (a system without
    a window only when ``systems`` names it: at a time agreed with operations). With it
    (a run starting): the systems of ``hosts`` (or ``systems``), starting now, closing at
    their window's close if it is open, else when the work is done.
    """
    chosen = _chosen_systems(setup, systems, hosts)
    until = now + timedelta(hours=within_hours)
    found: list[Opening] = []
    for system in chosen:
        window, blackouts = setup.windows.get(system.key, (None, []))
        if starting_now:
            opened = current_window(window, blackouts, now) if window is not None else None
            found.append(
                Opening(
                    system.key,
                    opened[0] if opened else now.astimezone(UTC).replace(microsecond=0),
                    opened[1] if opened else None,
                    starting_now=True,
                )
            )
        elif window is None:
            if systems:
                found.append(Opening(system.key, None, None))
        else:
            for opens, closes in openings(window, blackouts, now, until):
                found.append(Opening(system.key, opens, closes))
    return found


def _chosen_systems(
    setup: NotifySetup, keys: Sequence[str] | None, hosts: Sequence[str] | None
) -> list[System]:
    if keys:
        unknown = [k for k in keys if k not in setup.systems]
        if unknown:
            raise UserError(
                f"--system {shown(unknown[0])} is not one of: {', '.join(setup.systems)}"
            )
        wanted = set(keys)
        return [s for s in setup.systems.values() if s.key in wanted]
    if hosts is not None:
        return systems_of_hosts(setup.systems, hosts)
    return list(setup.systems.values())


def _closes(opening: Opening) -> str:
    """When an opening closes: the time alone on the day it opened, else day and time."""
    if opening.closes is None:
        return WHEN_DONE
    if opening.opens is not None and opening.closes.date() == opening.opens.date():
        return f"{opening.closes:%H:%M} {opening.closes.tzname()}"
    return human_time(opening.closes)


def upcoming(
    setup: NotifySetup, chosen: Sequence[Opening], *, now: datetime, run_id: str | None = None
) -> Content:
    """A notice of upcoming maintenance of ``chosen`` openings."""
    systems = [setup.systems[o.system] for o in chosen]
    unique = list({s.key: s for s in systems}.values())
    windows: list[dict[str, Any]] = []
    for opening in chosen:
        system = setup.systems[opening.system]
        if opening.starting_now:
            opens = "now"
        elif opening.opens is not None:
            opens = human_time(opening.opens)
        else:
            opens = AGREED_TIME
        windows.append(
            {
                "key": opening.key,
                "system": system.name,
                "system_key": system.key,
                "serves": system.serves,
                "impact": system.impact,
                "opens": opens,
                "closes": _closes(opening),
                "starting_now": opening.starting_now,
                "agreed": opening.opens is None and not opening.starting_now,
            }
        )
    starting = any(o.starting_now for o in chosen)
    by_system: dict[str, dict[str, Any]] = {}
    for window in windows:
        entry = by_system.setdefault(
            window["system_key"],
            {key: window[key] for key in ("system", "system_key", "serves", "impact")},
        )
        entry.setdefault("times", []).append(
            {key: window[key] for key in ("opens", "closes", "starting_now", "agreed")}
        )
    context = {
        **_base(setup, unique, now),
        "windows": windows,
        "by_system": list(by_system.values()),
        "starting_now": starting,
        "run_id": run_id,
    }
    about: dict[str, Any] = {
        "windows": [o.key for o in chosen],
        "systems": [s.key for s in unique],
        "starting_now": starting,
    }
    if run_id:
        about["run_id"] = run_id
    return Content("upcoming", context, about, run_id, unique)
