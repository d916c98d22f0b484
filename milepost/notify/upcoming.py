"""When maintenance windows open and close (pure logic over milepost.inventory.windows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from milepost.inventory.windows import Blackout, Window, window_state

__all__ = ["Opening", "current_window", "openings"]

#: Openings listed per system at most (a window every hour would otherwise fill a notice).
MAX_OPENINGS = 20
AGREED = "agreed"


@dataclass(frozen=True)
class Opening:
    """One opening of a system's window (opens None: the system has no window, the time is
    agreed with operations; closes None: when the work is done)."""

    system: str
    opens: datetime | None
    closes: datetime | None
    starting_now: bool = False

    @property
    def key(self) -> str:
        """system@opening (ISO, to the minute, in the window's zone): what makes a notice
        about this opening the same notice. Work starting now outside any window opens when
        its run starts: to the second, so that each run is announced, even two in a minute."""
        alone = self.starting_now and self.closes is None
        when = (
            self.opens.isoformat(timespec="seconds" if alone else "minutes")
            if self.opens
            else AGREED
        )
        return f"{self.system}@{when}"


def _fire_at_or_before(window: Window, moment: datetime) -> datetime:
    start = moment.astimezone(window.zone) + timedelta(seconds=1)
    fire: datetime = croniter(window.cron, start).get_prev(datetime)
    return fire.astimezone(window.zone)


def _after(window: Window, fire: datetime) -> datetime:
    """When an occurrence that fired at ``fire`` closes: its duration in elapsed time."""
    return (fire.astimezone(UTC) + window.duration).astimezone(window.zone)


def current_window(
    window: Window, blackouts: Sequence[Blackout], now: datetime
) -> tuple[datetime, datetime] | None:
    """(opened, closes) of the window open at ``now``, or None when it is not open."""
    is_open, _, _ = window_state(window, blackouts, now)
    if not is_open:
        return None
    fire = _fire_at_or_before(window, now)
    return fire, _after(window, fire)


def openings(
    window: Window, blackouts: Sequence[Blackout], now: datetime, until: datetime
) -> list[tuple[datetime, datetime]]:
    """(opens, closes) of each opening after ``now`` and no later than ``until``, in the
    window's time zone. A window open at ``now`` is not upcoming; an opening delayed by a
    blackout opens at the end of the blackout and closes with its occurrence."""
    found: list[tuple[datetime, datetime]] = []
    moment = now
    while len(found) < MAX_OPENINGS:
        is_open, _, next_open = window_state(window, blackouts, moment)
        if is_open:
            opened = current_window(window, blackouts, moment)
            if opened is None or opened[1] <= moment:
                break
            moment = opened[1]
            continue
        if next_open is None or next_open > until:
            break
        fire = _fire_at_or_before(window, next_open)
        closes = _after(window, fire)
        found.append((next_open.astimezone(window.zone), closes))
        if closes <= moment:
            break
        moment = closes
    return found
