"""What the question reminder and the hypercare daily review say (milepost.notify.content).

The question reminder lists vendors' questions to the agency that are open and due soon
(milepost.oversight.questions.due_soon), each once per audience: the questions a sent
reminder named are in its notice record (about.questions). The daily review is the plain
data milepost.reports.daily_review computed (the command hands it over), so the mail and
``--out`` say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from milepost.errors import UserError
from milepost.notify.content import Content, _base, _when
from milepost.oversight.questions import Question, due_soon, questions

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.notify.inventory import NotifySetup

__all__ = ["daily_review", "question_reminder", "reminder_questions"]


def reminder_questions(ledger: Ledger, now: datetime, within_hours: float) -> list[Question]:
    """The vendors' questions to the agency a reminder names at ``now``."""
    return due_soon(questions(ledger, now=now), now, within_hours)


def question_reminder(
    setup: NotifySetup, found: list[Question], *, now: datetime, within_hours: float
) -> Content:
    """A reminder of ``found``: who asked, about what, by when the agency owes an answer."""
    zone = ZoneInfo(setup.config.timezone)
    vendors = setup.vendors
    context = {
        **_base(setup, [], now),
        "within_hours": f"{within_hours:g}",
        "questions": [
            {
                "id": q.question_id,
                "vendor": vendors[q.vendor].name if q.vendor in vendors else q.vendor,
                "category": q.category,
                "subject": q.subject,
                "asked_by": q.asked_by,
                "due": _when(q.due_at, zone),
            }
            for q in found
        ],
    }
    about = {"questions": [q.question_id for q in found]}
    return Content("question_reminder", context, about, None, [])


def daily_review(setup: NotifySetup, review: Mapping[str, Any] | None, *, now: datetime) -> Content:
    """The hypercare daily review ``review`` (milepost.reports.daily_review's data) as a
    notice. UserError when there is none (not in hypercare)."""
    if not review or not review.get("in_hypercare"):
        raise UserError("no daily review to send: the program is not in hypercare (milepost_phase)")
    context = {**_base(setup, [], now), "review": dict(review)}
    about = {"day": str(review.get("day"))}
    return Content("daily_review", context, about, None, [])
