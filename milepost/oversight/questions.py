"""The vendor questions register: questions between the agency and its vendors, both ways,
and their answers, in the ledger.

A question goes one of two ways (its direction): ``to_vendor``, the agency asks a vendor,
who answers within its contract's question_response_hours; ``to_agency``, a vendor asks the
agency, which answers within the days milepost_question_commitments sets for the
question's category (milepost.inventory.question_commitments). A question is two records,
never an update:

vendor_question (host and run_id null) body: question_id ("Q-" + 8 hex), vendor (a key of
milepost_vendors), direction (to_vendor or to_agency; a record without one is to_vendor),
category (to_agency only: a key of milepost_question_commitments), subject (one line), body
(text of several lines, or null), asked_by (who asked: the operator, or the vendor's person
for to_agency), response_hours (the commitment in hours when it was asked), due_at (the
record's recorded_at plus response_hours, in the ledger's UTC time format).

vendor_question_answered body: question_id, text, answered_by. The question is answered
at the record's recorded_at.

A question's state (open, answered), whether it is late (answered after its due time, or
still open past it) and whether it is due soon (open, not yet due, due within a few
hours: :func:`due_soon`, what a reminder lists) are computed from these records, never
stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from milepost.errors import UserError
from milepost.input_checks import check_multiline, check_text, shown
from milepost.ledger.bodies import usable
from milepost.ledger.chain import TIME_FORMAT, format_time, utc_now
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.names import QUESTION_DIRECTIONS
from milepost.ledger.schema import records as T
from milepost.ledger.store import prepare
from milepost.operator import operator_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.inventory.vendors import Vendor
    from milepost.ledger.book import Ledger

__all__ = [
    "ANSWERED",
    "ASKED",
    "DIRECTIONS",
    "QUESTION_STATES",
    "TO_AGENCY",
    "TO_VENDOR",
    "Question",
    "answer",
    "ask",
    "ask_agency",
    "check_category",
    "due_soon",
    "load_questions",
    "questions",
]

ASKED = "vendor_question"
ANSWERED = "vendor_question_answered"
QUESTION_STATES = ("open", "answered")
#: Who a question is put to: a vendor (by the agency), or the agency (by a vendor).
DIRECTIONS = QUESTION_DIRECTIONS
TO_VENDOR, TO_AGENCY = QUESTION_DIRECTIONS
#: A reminder lists open questions to the agency due within this many hours (default).
REMIND_HOURS = 24.0
MAX_SUBJECT = 200
#: Longest question body or answer (64 KiB of characters); longer ones are refused by length.
MAX_BODY = 64 * 1024
MAX_QUESTION_ID = 64
#: Vendors named in an unknown-vendor error; the rest are counted.
MAX_NAMED = 10


@dataclass(frozen=True)
class Question:
    """A question as its records say it is (``late`` computed at the time asked)."""

    question_id: str
    vendor: str
    direction: str
    category: str | None
    subject: str
    body: str | None
    asked_by: str | None
    asked_at: str
    response_hours: float
    due_at: str
    answered_at: str | None
    answer: str | None
    answered_by: str | None
    state: str
    late: bool
    response_hours_taken: float | None

    @property
    def overdue(self) -> bool:
        """Open and past its due time."""
        return self.state == "open" and self.late

    def due_within(self, now: datetime | str, hours: float) -> bool:
        """Open, not yet due at ``now``, and due within ``hours`` of it."""
        at = _parse(format_time(now))
        due = _parse(self.due_at)
        return self.state == "open" and at <= due <= at + timedelta(hours=hours)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _named(items: list[str]) -> str:
    more = len(items) - MAX_NAMED
    return ", ".join(items[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def _moment(value: datetime | str, what: str) -> str:
    try:
        return format_time(value)
    except (TypeError, ValueError, AttributeError):
        raise UserError(
            f"{what} {shown(value)} is not a time: use an ISO-8601 time such as"
            " 2026-03-31T14:00:00Z"
        ) from None


def _parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC)


def _hours_between(start: str, end: str) -> float:
    return round((_parse(end) - _parse(start)).total_seconds() / 3600, 2)


def check_question(subject: str, body: str | None = None) -> tuple[str, str | None]:
    """The subject (one line, at most MAX_SUBJECT characters) and the body (several lines,
    at most MAX_BODY characters, or None) of a question, checked."""
    text = check_text(subject, "--subject", max_len=MAX_SUBJECT)
    details = check_multiline(body, "--body", max_len=MAX_BODY) if body is not None else None
    return text, details or None


def _check_vendor(vendors: Mapping[str, Vendor], vendor: str) -> Vendor:
    key = check_text(vendor, "--vendor", max_len=MAX_SUBJECT)
    if key not in vendors:
        known = _named(sorted(vendors)) or "none: set milepost_vendors in the inventory"
        raise UserError(f"unknown vendor {shown(key)}: the inventory's vendors are {known}")
    return vendors[key]


def check_category(commitments: Mapping[str, float], category: str) -> str:
    """A category of milepost_question_commitments. UserError (one line) otherwise."""
    key = check_text(category, "--category", max_len=64)
    if key not in commitments:
        known = _named(sorted(commitments)) or (
            "none: set milepost_question_commitments in the inventory (group_vars/all)"
        )
        raise UserError(
            f"unknown question category {shown(key)}: milepost_question_commitments has {known}"
        )
    return key


def _append_question(
    ledger: Ledger,
    *,
    stamp: str,
    vendor: str,
    direction: str,
    category: str | None,
    subject: str,
    details: str | None,
    asked_by: str,
    hours: float,
) -> Question:
    due_at = format_time(_parse(stamp) + timedelta(hours=hours))
    question_id = "Q-" + secrets.token_hex(4)
    body: dict[str, Any] = {
        "question_id": question_id,
        "vendor": vendor,
        "direction": direction,
        "subject": subject,
        "body": details,
        "asked_by": asked_by,
        "response_hours": hours,
        "due_at": due_at,
    }
    if category is not None:
        body["category"] = category
    ledger.append(
        [{"kind": ASKED, "run_id": None, "host": None, "recorded_at": stamp, "body": body}]
    )
    return next(q for q in questions(ledger) if q.question_id == question_id)


def ask(
    ledger: Ledger,
    vendors: Mapping[str, Vendor],
    *,
    vendor: str,
    subject: str,
    body: str | None = None,
    asked_at: datetime | str | None = None,
    asked_by: str | None = None,
) -> Question:
    """Append a vendor_question record and return the question. ``asked_at`` (tests and
    backfill only): when it was asked, default now. UserError (nothing appended) for an
    unknown vendor, an empty or over-long subject, an over-long body or hostile text."""
    text, details = check_question(subject, body)
    found = _check_vendor(vendors, vendor)
    stamp = utc_now() if asked_at is None else _moment(asked_at, "asked at")
    who = check_text(asked_by, "asked by", max_len=MAX_SUBJECT) if asked_by else operator_name()
    return _append_question(
        ledger,
        stamp=stamp,
        vendor=found.key,
        direction=TO_VENDOR,
        category=None,
        subject=text,
        details=details,
        asked_by=who,
        hours=found.commitments.question_response_hours,
    )


def ask_agency(
    ledger: Ledger,
    vendors: Mapping[str, Vendor],
    commitments: Mapping[str, float],
    *,
    vendor: str,
    category: str,
    subject: str,
    body: str | None = None,
    asked_at: datetime | str | None = None,
    asked_by: str | None = None,
) -> Question:
    """Append a vendor_question record of a question ``vendor`` put to the agency, due
    within the days milepost_question_commitments sets for ``category``; return it.
    ``asked_by``: the vendor's person who asked (default: the operator recording it).
    UserError (nothing appended) for an unknown vendor or category, or bad text."""
    text, details = check_question(subject, body)
    found = _check_vendor(vendors, vendor)
    key = check_category(commitments, category)
    stamp = utc_now() if asked_at is None else _moment(asked_at, "asked at")
    who = check_text(asked_by, "--asked-by", max_len=MAX_SUBJECT) if asked_by else operator_name()
    return _append_question(
        ledger,
        stamp=stamp,
        vendor=found.key,
        direction=TO_AGENCY,
        category=key,
        subject=text,
        details=details,
        asked_by=who,
        hours=round(commitments[key] * 24, 2),
    )


def answer(
    ledger: Ledger,
    question_id: str,
    text: str,
    answered_at: datetime | str | None = None,
    answered_by: str | None = None,
) -> Question:
    """Append a vendor_question_answered record and return the answered question. The check
    and the append hold the ledger's write lock, so two people cannot both answer it.
    UserError (nothing appended) for an unknown or already answered question, an empty,
    over-long or hostile answer."""
    wanted = check_text(question_id, "question id", max_len=MAX_QUESTION_ID)
    reply = check_multiline(text, "--text", max_len=MAX_BODY)
    if not reply:
        raise UserError("--text is empty: give the vendor's answer")
    stamp = utc_now() if answered_at is None else _moment(answered_at, "answered at")
    who = check_text(answered_by, "answered by", max_len=MAX_SUBJECT) if answered_by else None
    record = {
        "kind": ANSWERED,
        "run_id": None,
        "host": None,
        "recorded_at": stamp,
        "body": {"question_id": wanted, "text": reply, "answered_by": who or operator_name()},
    }
    prepared = prepare(record)
    try:
        with ledger.write_transaction() as conn:
            known = {q.question_id: q for q in load_questions(conn, stamp)}
            found = known.get(wanted)
            if found is None:
                raise UserError(
                    f"no question {shown(wanted)} in the ledger:"
                    " `milepost vendor question list` shows the questions"
                )
            if found.answered_at is not None:
                raise UserError(
                    f"question {wanted} was already answered at {found.answered_at}"
                    f" by {found.answered_by or 'someone'}"
                )
            if stamp < found.asked_at:
                raise UserError(
                    f"answered at {stamp} is before question {wanted} was asked"
                    f" ({found.asked_at}): give a later time"
                )
            ledger.append_locked(conn, [prepared])
    except (SQLAlchemyError, OSError) as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}"
        ) from bad
    return next(q for q in questions(ledger) if q.question_id == wanted)


def _text(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _hours(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return 0.0


def load_questions(conn: Connection, now: datetime | str | None = None) -> list[Question]:
    """Every question, oldest first (by when it was asked), from vendor_question and
    vendor_question_answered records, ``late`` computed at ``now`` (default: now)."""
    at = format_time(now) if now is not None else utc_now()
    asked: dict[str, dict[str, Any]] = {}
    answered: dict[str, tuple[str, dict[str, Any]]] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.kind, T.c.recorded_at, T.c.body)
        .where(T.c.kind.in_((ASKED, ANSWERED)))
        .order_by(T.c.seq)
    )
    for seq, kind, recorded_at, body_text in rows:
        body = usable(seq, kind, body_text)
        if body is None:
            continue
        question_id = body["question_id"]
        if kind == ASKED:
            asked.setdefault(question_id, {**body, "asked_at": recorded_at})
        elif question_id in asked and question_id not in answered:
            answered[question_id] = (recorded_at, body)
    found = []
    for question_id, body in asked.items():
        answered_at, reply = answered.get(question_id, (None, {}))
        asked_at = str(body["asked_at"])
        due_at = str(body.get("due_at") or asked_at)
        late = (answered_at > due_at) if answered_at is not None else at > due_at
        found.append(
            Question(
                question_id=question_id,
                vendor=str(body.get("vendor") or ""),
                direction=str(body.get("direction") or TO_VENDOR),
                category=_text(body.get("category")),
                subject=str(body.get("subject") or ""),
                body=_text(body.get("body")),
                asked_by=_text(body.get("asked_by")),
                asked_at=asked_at,
                response_hours=_hours(body.get("response_hours")),
                due_at=due_at,
                answered_at=answered_at,
                answer=_text(reply.get("text")),
                answered_by=_text(reply.get("answered_by")),
                state="answered" if answered_at is not None else "open",
                late=late,
                response_hours_taken=(
                    _hours_between(asked_at, answered_at) if answered_at is not None else None
                ),
            )
        )
    found.sort(key=lambda q: q.asked_at)
    return found


def questions(ledger: Ledger, now: datetime | str | None = None) -> list[Question]:
    """Every question, oldest first, with its state and lateness at ``now``."""
    with ledger.read_transaction() as conn:
        return load_questions(conn, now)


def check_hours(value: float, what: str = "--within") -> float:
    """A number of hours ahead, more than 0 and at most 400 days."""
    if not 0 < value <= 24 * 400:
        raise UserError(f"{what} must be more than 0 and at most {24 * 400} hours, not {value:g}")
    return value


def due_soon(
    found: list[Question],
    now: datetime | str,
    within_hours: float = REMIND_HOURS,
    direction: str = TO_AGENCY,
) -> list[Question]:
    """The open questions of ``direction`` not yet due at ``now`` and due within
    ``within_hours`` of it, soonest first: what a reminder lists."""
    hours = check_hours(within_hours)
    soon = [q for q in found if q.direction == direction and q.due_within(now, hours)]
    return sorted(soon, key=lambda q: q.due_at)
