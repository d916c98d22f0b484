"""Follow-up actions of lessons learned: the model, the ledger records it is read from, and
when an action is overdue.

A lesson (L-...) says what a glitch taught; its actions say what changes because of it,
each one of milepost.ledger.names.ACTION_KINDS (a QC check added or changed, a desired
change DC-..., a runbook change, a baseline change), with an owner and a due date, open
until it is done. An action is overdue on a day after its due date while it is not done.

lesson_action body: action_id ("A-" + 8 hex), lesson_id, kind, title (what is to be
done), text, owner, due (YYYY-MM-DD), ref (what it changes: the DC-... of a desired change,
a check, a runbook's path; or null), added_by.

lesson_action_updated body: action_id, status ("done", "open" again, or null), fields
{owner, due, ref: only those that change}, comment, updated_by.

Written by milepost.oversight.action_writing; every update is appended, never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time
from milepost.ledger.names import ACTION_KINDS, ACTION_STATUSES
from milepost.ledger.schema import records as T

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = [
    "ACTION_ID",
    "ACTION_KIND",
    "ACTION_KINDS",
    "ACTION_STATUSES",
    "ACTION_UPDATED_KIND",
    "Action",
    "actions",
    "load_actions",
    "overdue",
]

ACTION_KIND = "lesson_action"
ACTION_UPDATED_KIND = "lesson_action_updated"
ACTION_PREFIX = "A-"
ACTION_ID = re.compile(r"A-[A-Za-z0-9._-]{1,64}")
DONE = "done"


@dataclass
class Action:
    """One follow-up action as its records say it is now. Times are the ledger's UTC text.

    ``history``: the updates in order, each {at, by, status, fields, comment};
    ``done_at``: when it was last marked done (None while open).
    """

    action_id: str
    lesson_id: str
    kind: str
    title: str
    text: str | None
    owner: str
    due: str
    ref: str | None
    status: str
    added_by: str | None
    added_at: str
    updated_at: str
    done_at: str | None = None
    #: The due date it was added with (``due`` is the one it has now).
    first_due: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def done_by(self, now: datetime) -> bool:
        """Whether it was done at ``now`` (its state as of then, updates after it unseen)."""
        moment = format_time(now)
        state = "open"
        for entry in self.history:
            if entry["at"] > moment:
                break
            if entry["status"] is not None:
                state = entry["status"]["to"]
        return state == DONE

    def due_at(self, now: datetime) -> str:
        """Its due date as it was at ``now`` (a later reschedule unseen)."""
        moment = format_time(now)
        due = self.first_due or self.due
        for entry in self.history:
            if entry["at"] > moment:
                break
            if entry["fields"].get("due"):
                due = entry["fields"]["due"]
        return due

    def is_overdue(self, now: datetime) -> bool:
        """Past its due date at ``now`` (a day after it, UTC) and not done by then."""
        day = now.astimezone(UTC).date()
        return date.fromisoformat(self.due_at(now)) < day and not self.done_by(now)

    def days_overdue(self, now: datetime) -> int:
        """Whole days since its due date at ``now`` (0 when not overdue)."""
        if not self.is_overdue(now):
            return 0
        return (now.astimezone(UTC).date() - date.fromisoformat(self.due_at(now))).days

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        found = asdict(self)
        if now is not None:
            found["overdue"] = self.is_overdue(now)
            found["days_overdue"] = self.days_overdue(now)
        return found


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _action_from(recorded_at: str, body: dict[str, Any]) -> Action:
    return Action(
        action_id=str(body["action_id"]),
        lesson_id=str(body["lesson_id"]),
        kind=str(body["kind"]),
        title=str(body["title"]),
        text=_str(body.get("text")),
        owner=str(body["owner"]),
        due=str(body["due"]),
        first_due=str(body["due"]),
        ref=_str(body.get("ref")),
        status="open",
        added_by=_str(body.get("added_by")),
        added_at=recorded_at,
        updated_at=recorded_at,
    )


def _apply(action: Action, recorded_at: str, body: dict[str, Any]) -> None:
    status = _str(body.get("status"))
    given = body.get("fields")
    fields = {k: v for k, v in (given if isinstance(given, dict) else {}).items()
              if k in ("owner", "due", "ref") and _str(v)}  # fmt: skip
    entry: dict[str, Any] = {
        "at": recorded_at,
        "by": _str(body.get("updated_by")),
        "status": None,
        "fields": dict(fields),
        "comment": _str(body.get("comment")),
    }
    if status is not None and status != action.status:
        entry["status"] = {"from": action.status, "to": status}
        action.status = status
        action.done_at = recorded_at if status == DONE else None
    for name, value in fields.items():
        setattr(action, name, value)
    action.history.append(entry)
    action.updated_at = recorded_at


def load_actions(conn: Connection) -> list[Action]:
    """Every follow-up action, oldest first, with its updates applied in ledger order.

    A second record with an ID already seen, and an update of an unknown ID, are ignored
    (the first record wins); unusable bodies are skipped with one warning each.
    """
    found: dict[str, Action] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.kind, T.c.recorded_at, T.c.body)
        .where(T.c.kind.in_((ACTION_KIND, ACTION_UPDATED_KIND)))
        .order_by(T.c.seq)
    )
    for seq, kind, recorded_at, body_text in rows:
        body = usable(seq, kind, body_text)
        if body is None:
            continue
        action_id = str(body["action_id"])
        if kind == ACTION_UPDATED_KIND:
            if action_id in found:
                _apply(found[action_id], recorded_at, body)
            continue
        if action_id not in found:
            found[action_id] = _action_from(recorded_at, body)
    return list(found.values())


def actions(ledger: Ledger) -> list[Action]:
    """Every follow-up action in the ledger, oldest first."""
    with ledger.read_transaction() as conn:
        return load_actions(conn)


def overdue(found: Iterable[Action], now: datetime) -> list[Action]:
    """The actions overdue at ``now``, the longest overdue first."""
    late = [a for a in found if a.is_overdue(now)]
    return sorted(late, key=lambda a: (a.due_at(now), a.action_id))
