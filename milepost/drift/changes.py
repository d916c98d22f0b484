"""Planned changes in the ledger: drift inside an open change is planned, not unauthorised.

A change is two records, never an update:

change_opened (host and run_id null) body: change_id ("C-" + 8 hex), hosts (inventory host
names), resources (fnmatch patterns ``kind:pattern`` with kind one of RESOURCE_KINDS, or
``*`` for any resource), reason, opened_by, until (the ledger's UTC time, or null: open
until closed). The change opens at the record's recorded_at.

change_closed body: change_id, note (or null), closed_by. The change closes at the record's
recorded_at.

A change's state (open, closed, expired) is computed from these records, never stored.
"""

from __future__ import annotations

import fnmatch
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import UserError
from milepost.input_checks import shown as safe
from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time, utc_now
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.schema import records as T
from milepost.ledger.store import prepare
from milepost.operator import operator_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

OPENED = "change_opened"
CLOSED = "change_closed"
#: The kinds of resource the baseline checks (the part of a resource name before ':').
RESOURCE_KINDS = ("file", "service", "package", "sysctl", "user", "sudoers", "sshd")
CHANGE_STATES = ("open", "closed", "expired")
#: Hosts and patterns named in full in an error message; the rest are counted.
MAX_NAMED = 5


@dataclass(frozen=True)
class Change:
    """A change as its records say it is (state computed at the time changes() was asked)."""

    change_id: str
    hosts: tuple[str, ...]
    resources: tuple[str, ...]
    reason: str
    opened_by: str | None
    opened_at: str
    until: str | None
    closed_at: str | None
    closed_by: str | None
    note: str | None
    state: str

    def covers(self, host: str, resource: str, at: datetime | str) -> bool:
        """Is ``host``'s ``resource`` inside this change at time ``at``?"""
        moment = format_time(at)
        if moment < self.opened_at:
            return False
        if self.closed_at is not None and self.closed_at <= moment:
            return False
        if self.until is not None and self.until <= moment:
            return False
        return host in self.hosts and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in self.resources
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hosts"] = list(self.hosts)
        data["resources"] = list(self.resources)
        return data


def _named(items: Sequence[str]) -> str:
    listed = ", ".join(
        item if item.isprintable() and len(item) <= 100 else safe(item)
        for item in items[:MAX_NAMED]
    )
    return listed + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _clean_list(values: Iterable[str]) -> list[str]:
    """Stripped, without empties and repeats, in the order given."""
    seen: dict[str, None] = {}
    for value in values:
        text = str(value).strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def check_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a resource pattern (kind:pattern or *), or None if it is."""
    if pattern == "*":
        return None
    kind, sep, rest = pattern.partition(":")
    if not sep or kind not in RESOURCE_KINDS or not rest.strip():
        return (
            f"resource pattern {pattern!r} is not KIND:PATTERN with KIND one of"
            f" {', '.join(RESOURCE_KINDS)} (or * for any resource), e.g. 'file:/etc/ruc/*'"
        )
    return None


def _parse_until(until: datetime | str | None, now: str) -> str | None:
    if until is None:
        return None
    try:
        moment = format_time(until)
    except (TypeError, ValueError, AttributeError):
        raise UserError(
            f"until {until!r} is not a time: use YYYY-MM-DD or an ISO-8601 time"
        ) from None
    if moment <= now:
        raise UserError(f"until {moment} is not in the future: give a later time or none")
    return moment


def open_change(
    ledger: Ledger,
    hosts: Sequence[str],
    resources: Sequence[str],
    reason: str,
    until: datetime | str | None = None,
    opened_by: str | None = None,
    *,
    known_hosts: Collection[str],
) -> dict[str, Any]:
    """Append a change_opened record and return it (its body holds the change_id).

    ``known_hosts``: the inventory's hosts; every host of the change must be one of them.
    UserError (one line saying what to fix) for an unknown host, a bad resource pattern, an
    empty reason or an ``until`` not in the future; nothing is appended then.
    """
    names = _clean_list(hosts)
    if not names:
        raise UserError("a change needs at least one inventory host (--hosts H1,H2)")
    unknown = [name for name in names if name not in known_hosts]
    if unknown:
        raise UserError(
            f"unknown host(s) {_named(unknown)}: hosts must be in the inventory"
            " (see `ansible-inventory --graph`)"
        )
    patterns = _clean_list(resources)
    if not patterns:
        raise UserError(
            "a change needs at least one resource pattern (--resources 'file:/etc/ruc/*')"
        )
    for pattern in patterns:
        why = check_pattern(pattern)
        if why:
            raise UserError(why)
    why_text = " ".join(str(reason or "").split())
    if not why_text:
        raise UserError("a change needs a reason saying why (--reason TEXT); it is recorded")
    now = utc_now()
    record = {
        "kind": OPENED,
        "run_id": None,
        "host": None,
        "recorded_at": now,
        "body": {
            "change_id": "C-" + secrets.token_hex(4),
            "hosts": names,
            "resources": patterns,
            "reason": why_text,
            "opened_by": " ".join(str(opened_by).split()) if opened_by else operator_name(),
            "until": _parse_until(until, now),
        },
    }
    ledger.append([record])
    return record


def close_change(
    ledger: Ledger, change_id: str, note: str | None = None, closed_by: str | None = None
) -> dict[str, Any]:
    """Append a change_closed record and return it. UserError for an unknown or already
    closed change. The check and the append hold the ledger's write lock, so two people
    closing the same change cannot both succeed."""
    wanted = change_id.strip()
    text = " ".join(str(note or "").split()) or None
    record = {
        "kind": CLOSED,
        "run_id": None,
        "host": None,
        "recorded_at": utc_now(),
        "body": {
            "change_id": wanted,
            "note": text,
            "closed_by": " ".join(str(closed_by).split()) if closed_by else operator_name(),
        },
    }
    prepared = prepare(record)
    try:
        with ledger.write_transaction() as conn:
            known = {c.change_id: c for c in load_changes(conn)}
            found = known.get(wanted)
            if found is None:
                raise UserError(
                    f"no change {wanted!r} in the ledger: `milepost change list` shows the changes"
                )
            if found.closed_at is not None:
                raise UserError(
                    f"change {wanted} was already closed at {found.closed_at}"
                    f" by {found.closed_by or 'someone'}"
                )
            ledger.append_locked(conn, [prepared])
    except (SQLAlchemyError, OSError) as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}"
        ) from bad
    return record


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value if isinstance(item, str | int | float))


def _text(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def load_changes(conn: Connection, now: datetime | str | None = None) -> list[Change]:
    """Every change, oldest first, from change_opened and change_closed records (through
    the (kind, recorded_at) index), its state computed at ``now`` (default: now)."""
    at = format_time(now) if now is not None else utc_now()
    opened: dict[str, dict[str, Any]] = {}
    closed: dict[str, tuple[str, dict[str, Any]]] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.kind, T.c.recorded_at, T.c.body)
        .where(T.c.kind.in_((OPENED, CLOSED)))
        .order_by(T.c.seq)
    )
    for seq, kind, recorded_at, body_text in rows:
        body = usable(seq, kind, body_text)
        if body is None:
            continue
        change_id = body["change_id"]
        if kind == OPENED:
            opened.setdefault(change_id, {**body, "opened_at": recorded_at})
        elif change_id in opened and change_id not in closed:
            closed[change_id] = (recorded_at, body)
    found = []
    for change_id, body in opened.items():
        closed_at, closing = closed.get(change_id, (None, {}))
        until = _text(body.get("until"))
        if closed_at is not None:
            state = "closed"
        elif until is not None and until <= at:
            state = "expired"
        else:
            state = "open"
        found.append(
            Change(
                change_id=change_id,
                hosts=_strings(body.get("hosts")),
                resources=_strings(body.get("resources")),
                reason=str(body.get("reason") or ""),
                opened_by=_text(body.get("opened_by")),
                opened_at=str(body["opened_at"]),
                until=until,
                closed_at=closed_at,
                closed_by=_text(closing.get("closed_by")),
                note=_text(closing.get("note")),
                state=state,
            )
        )
    return found


def changes(ledger: Ledger, now: datetime | str | None = None) -> list[Change]:
    """Every change, oldest first, with its state (open, closed, expired) at ``now``."""
    with ledger.read_transaction() as conn:
        return load_changes(conn, now)


def covering(
    found: Iterable[Change], host: str, resource: str, at: datetime | str
) -> Change | None:
    """The change (the most recently opened, if several) that was open at ``at`` and covers
    ``host``'s ``resource``, or None."""
    best: Change | None = None
    for change in found:
        if change.covers(host, resource, at) and (
            best is None or change.opened_at >= best.opened_at
        ):
            best = change
    return best
