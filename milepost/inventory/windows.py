"""Maintenance windows and blackout dates (pure logic, no Ansible, no I/O).

A window is a cron expression (five fields, or an alias such as ``@daily``) whose fire times
open the window, a duration in minutes for which it stays open, and the IANA time zone the
cron expression and the blackout dates are read in. A blackout is a local calendar date (or
an inclusive range of dates) on which no maintenance may happen, even inside a window.

Durations are elapsed time: a window opening at 01:00 for 120 minutes on the night the
clocks spring forward closes at 04:00 local time. Fire times that fall in the hour skipped
in spring move to the first valid minute after it; in autumn a fire time inside the repeated
hour fires on both passes (croniter's behaviour).

Inventory shape (group_vars)::

    milepost_window:
      cron: "0 1 * * 0"        # every Sunday at 01:00
      duration_minutes: 240
      timezone: America/Los_Angeles
    milepost_blackouts:
      - 2025-01-31              # one date
      - {start: 2025-03-28, end: 2025-04-02}   # an inclusive range
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from milepost.errors import UserError
from milepost.inventory.lab_only import lab_only_problem

__all__ = [
    "Blackout",
    "Window",
    "WindowState",
    "decide",
    "parse_blackouts",
    "parse_now",
    "window_result",
    "parse_window",
    "window_state",
]

#: Longest window accepted: one week.
MAX_DURATION_MINUTES = 7 * 24 * 60
#: How far ahead window_state looks for the next opening.
SEARCH_HORIZON = timedelta(days=400)
#: Upper bound on the cron fire times window_state examines (guards against pathological input).
MAX_FIRE_TIMES = 200_000

CRON_ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"})


@dataclass(frozen=True)
class Window:
    """A maintenance window: opens at each cron fire time, stays open duration_minutes."""

    cron: str
    duration_minutes: int
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


@dataclass(frozen=True)
class Blackout:
    """An inclusive range of local calendar dates on which no maintenance may happen."""

    start: date
    end: date

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


#: (open, reason, next_open): next_open is None when open, or when no opening was found.
WindowState = tuple[bool, str, datetime | None]


def _describe(group: str) -> str:
    return f"maintenance window of {_key_text(str(group))}"


def _key_text(key: str) -> str:
    """A key for a message: as written when it is short printable text, else escaped."""
    return key if key.isprintable() and len(key) <= 60 else ascii(key)[:60]


def parse_window(data: Mapping[str, Any], group: str = "this group") -> Window:
    """Validate an inventory window mapping and return a Window.

    Raises UserError with one line naming the group and what is wrong.
    """
    where = _describe(group)
    if not isinstance(data, Mapping):
        raise UserError(
            f"{where}: expected a mapping with cron, duration_minutes and timezone, "
            f"got {type(data).__name__}"
        )
    unknown = sorted(
        str(key) for key in data if key not in {"cron", "duration_minutes", "timezone"}
    )
    if unknown:
        raise UserError(
            f"{where}: unknown key(s) {', '.join(map(_key_text, unknown))}; "
            "expected cron, duration_minutes and timezone"
        )
    missing = [
        key for key in ("cron", "duration_minutes", "timezone") if data.get(key) in (None, "")
    ]
    if missing:
        raise UserError(f"{where}: missing {', '.join(missing)}")

    cron = data["cron"]
    if not isinstance(cron, str) or not _cron_is_valid(cron):
        raise UserError(
            f"{where}: cron expression {cron!r} is not valid; expected five fields "
            "(minute hour day-of-month month day-of-week) such as '0 1 * * 0', or @daily"
        )
    cron = " ".join(cron.split())

    duration = data["duration_minutes"]
    if isinstance(duration, str) and duration.strip().isascii() and duration.strip().isdigit():
        duration = int(duration.strip())
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise UserError(f"{where}: duration_minutes {duration!r} is not a whole number of minutes")
    if not 1 <= duration <= MAX_DURATION_MINUTES:
        raise UserError(
            f"{where}: duration_minutes {duration} is out of range (1 to {MAX_DURATION_MINUTES})"
        )

    timezone = data["timezone"]
    if not isinstance(timezone, str) or not _zone_is_valid(timezone):
        raise UserError(
            f"{where}: unknown time zone {timezone!r}; use an IANA name such as "
            "'America/Los_Angeles' or 'UTC'"
        )
    return Window(cron=cron, duration_minutes=duration, timezone=timezone)


def _cron_is_valid(expression: str) -> bool:
    text = " ".join(expression.split())
    if text in CRON_ALIASES:
        return True
    if len(text.split(" ")) != 5:
        return False
    try:
        return bool(croniter.is_valid(text))
    except Exception:  # noqa: BLE001 - croniter raises assorted errors for odd input
        return False


def _zone_is_valid(name: str) -> bool:
    if not name or name != name.strip():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _parse_date(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UserError(f"{where}: blackout date {value!r} is not an ISO date (YYYY-MM-DD)")


def parse_blackouts(items: Sequence[Any] | None, group: str = "this group") -> list[Blackout]:
    """Validate blackout entries (ISO dates or {start, end} mappings) and return Blackouts."""
    where = f"blackouts of {_key_text(str(group))}"
    if items is None:
        return []
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise UserError(f"{where}: expected a list of dates or {{start, end}} ranges")
    blackouts = []
    for item in items:
        if isinstance(item, Mapping):
            if set(item) != {"start", "end"}:
                raise UserError(f"{where}: range {dict(item)!r} must have exactly start and end")
            start = _parse_date(item["start"], where)
            end = _parse_date(item["end"], where)
            if end < start:
                raise UserError(f"{where}: range ends ({end}) before it starts ({start})")
        else:
            start = end = _parse_date(item, where)
        blackouts.append(Blackout(start, end))
    return sorted(blackouts, key=lambda blackout: (blackout.start, blackout.end))


def _blackout_on(blackouts: Sequence[Blackout], day: date) -> Blackout | None:
    for blackout in blackouts:
        if blackout.covers(day):
            return blackout
    return None


def _blackout_end(blackouts: Sequence[Blackout], day: date) -> date:
    """Last date of the run of consecutive blacked-out days that starts at day."""
    last = day
    while True:
        following = last + timedelta(days=1)
        ends = [blackout.end for blackout in blackouts if blackout.covers(following)]
        if not ends:
            return last
        last = max(ends)


def _local_midnight_after(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) of the local day after day."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def _first_allowed(
    start: datetime, end: datetime, blackouts: Sequence[Blackout], zone: ZoneInfo
) -> datetime | None:
    """Earliest instant in [start, end) (UTC) whose local date is not blacked out."""
    moment = start
    while moment < end:
        day = moment.astimezone(zone).date()
        if _blackout_on(blackouts, day) is None:
            return moment
        moment = _local_midnight_after(_blackout_end(blackouts, day), zone)
    return None


def _to_utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _fmt(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="minutes")


def window_state(
    window: Window | None, blackouts: Sequence[Blackout], now: datetime
) -> WindowState:
    """Return (open, reason, next_open) for the aware datetime now.

    Open when now lies in [fire time, fire time + duration) of the window and its local date
    is not blacked out. Otherwise next_open is the next instant that is open (a fire time,
    or the local midnight that ends a blackout while an occurrence is still open), or None
    when there is none within SEARCH_HORIZON; it is given in the window's time zone. With
    no window (None) only blackouts apply, read in UTC.

    A blackout that lasts to the end of the calendar (9999-12-31), or a time at its edge,
    leaves nothing that can open: closed, no next opening.
    """
    try:
        return _state(window, blackouts, now)
    except OverflowError:
        return (
            False,
            "no window opens before the end of the calendar (9999-12-31): a blackout or"
            " the time reaches it",
            None,
        )


def _state(window: Window | None, blackouts: Sequence[Blackout], now: datetime) -> WindowState:
    now_utc = _to_utc(now)
    if window is None:
        zone = ZoneInfo("UTC")
        today = now_utc.date()
        blackout = _blackout_on(blackouts, today)
        if blackout is None:
            return True, "no maintenance window is configured; the window check passes", None
        reopen = _local_midnight_after(_blackout_end(blackouts, today), zone)
        return (
            False,
            f"{today} is a blackout date ({blackout.start} to {blackout.end}, UTC)",
            reopen,
        )

    zone = window.zone
    duration = window.duration
    local_now = now_utc.astimezone(zone)
    today = local_now.date()
    blackout_now = _blackout_on(blackouts, today)

    # Occurrences that are still open at now fired in (now - duration, now].
    search_from = now_utc - duration
    horizon = now_utc + SEARCH_HORIZON
    fires = croniter(window.cron, search_from.astimezone(zone))
    examined = 0
    while examined < MAX_FIRE_TIMES:
        examined += 1
        try:
            fire = fires.get_next(datetime).astimezone(UTC)
        except (ValueError, KeyError):  # CroniterBadDateError: the expression never fires
            break
        if fire > horizon:
            break
        close = fire + duration
        opening = _first_allowed(max(fire, now_utc), close, blackouts, zone)
        if opening is not None:
            if opening == now_utc:
                return (
                    True,
                    f"inside the window opened {_fmt(fire, zone)} until {_fmt(close, zone)}",
                    None,
                )
            reason = (
                f"{today} is a blackout date ({blackout_now.start} to {blackout_now.end})"
                if blackout_now is not None
                else "outside the window"
            )
            return (
                False,
                f"{reason}; next window opens {_fmt(opening, zone)}",
                opening.astimezone(zone),
            )
        # Every fire time on a blacked-out run of days: skip to the end of that run.
        day = fire.astimezone(zone).date()
        if _blackout_on(blackouts, day) is not None:
            resume = _local_midnight_after(_blackout_end(blackouts, day), zone) - duration
            if resume > fire:
                fires = croniter(window.cron, resume.astimezone(zone))
    reason = f"{today} is a blackout date" if blackout_now is not None else "outside the window"
    return (
        False,
        f"{reason}; no window opens within {SEARCH_HORIZON.days} days",
        None,
    )


def parse_now(text: str) -> datetime:
    """Parse an ISO 8601 date-time; naive values are UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def decide(params: Mapping[str, Any], now: datetime) -> tuple[bool, dict[str, Any]]:
    """(failed, result) of the milepost_window_check action for its arguments at ``now``.

    Raises UserError for a malformed window, blackout list or override.
    """
    group = params.get("group") or "this host"
    raw_window = params.get("window") or {}
    window = parse_window(raw_window, group=group) if raw_window else None
    blackouts = parse_blackouts(params.get("blackouts") or [], group=group)
    is_open, reason, next_open = window_state(window, blackouts, now)
    next_text = next_open.isoformat() if next_open is not None else None
    result: dict[str, Any] = {
        "changed": False,
        "open": is_open,
        "reason": reason,
        "next_open": next_text,
        "overridden": False,
        "configured": window is not None,
        "group": group,
    }
    if is_open:
        return False, result

    override_reason = str(params.get("override_reason") or "").strip()
    if params.get("override"):
        if not override_reason:
            raise UserError(
                f"override of the maintenance window of {group} needs a non-empty reason"
                " (override_reason / --reason TEXT)"
            )
        result["overridden"] = True
        result["reason"] = f"window overridden ({reason}): {override_reason}"
        result["milepost_window_override"] = {
            "reason": override_reason,
            "group": group,
            "next_open": next_text,
        }
        return False, result

    when = next_text if next_text is not None else f"not within 400 days ({reason})"
    result["msg"] = f"outside the maintenance window of {group}: next window opens {when}"
    if next_text is not None and "blackout" in reason:
        result["msg"] += f" ({reason.split(';')[0]})"
    return True, result


def window_result(args: Mapping[str, Any], environment: Any) -> dict[str, Any]:
    """The result of a window check task (the milepost_window_check and milepost_probe
    actions) for its arguments ``window``, ``blackouts``, ``group``, ``now``, ``override``
    and ``override_reason``: ``failed`` with a one-line ``msg`` when the window is closed,
    malformed or its clock moved outside the lab."""

    now_text = str(args.get("now") or "").strip()
    refused = lab_only_problem(environment, now=now_text)
    if refused:
        return {"failed": True, "msg": refused}
    try:
        now = parse_now(now_text) if now_text else datetime.now(UTC)
    except ValueError:
        return {"failed": True, "msg": f"now {now_text!r} is not an ISO 8601 date-time"}
    if not isinstance(args.get("window") or {}, Mapping):
        return {
            "failed": True,
            "msg": "window must be a mapping (cron, duration_minutes, timezone)",
        }
    if not isinstance(args.get("blackouts") or [], list):
        return {"failed": True, "msg": "blackouts must be a list of dates"}
    override = args.get("override")
    if isinstance(override, str):
        override = override.strip().lower() in ("1", "true", "yes", "on", "y")
    try:
        failed, result = decide({**args, "override": bool(override)}, now)
    except UserError as exc:
        return {"failed": True, "msg": str(exc)}
    if failed:
        result["failed"] = True
    return result
