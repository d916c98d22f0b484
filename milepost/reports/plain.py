"""Times, counts and statuses in plain words, for people who do not run the playbooks."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "DEFAULT_MONTHS",
    "MAX_MONTHS",
    "STATUS_WORDS",
    "count",
    "month_label",
    "parse_time",
    "plain_date",
    "plain_moment",
    "plain_time",
]

#: Months the dashboard's charts cover by default, and at most (kept here, free of
#: SQLAlchemy, so `milepost report dashboard --help` states them without loading it).
DEFAULT_MONTHS = 6
MAX_MONTHS = 36

#: A system's status code (data-status) and its words, in the order the rules apply.
STATUS_WORDS: dict[str, str] = {
    "under-way": "Maintenance under way",
    "problem": "Problem reported",
    "overdue": "Security update overdue",
    "normal": "Working normally",
    "unknown": "Not yet checked",
}


def parse_time(text: str) -> datetime:
    """A ledger time (or any ISO-8601 time; naive means UTC) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def plain_date(text: str) -> str:
    """'2026-11-03T04:05:06.000000Z' -> '3 November 2026' (the UTC date)."""
    moment = parse_time(text)
    return f"{moment.day} {moment:%B %Y}"


def plain_time(text: str) -> str:
    """'2026-11-03T04:05:06.000000Z' -> '3 November 2026, 04:05 UTC'."""
    moment = parse_time(text)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def plain_moment(moment: datetime) -> str:
    """An aware datetime in its own time zone: 'Sunday 6 December 2026, 02:00 PST'."""
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M %Z}".strip()


def month_label(month: str) -> str:
    """'2026-11' -> 'Nov 2026'."""
    return datetime.strptime(month, "%Y-%m").strftime("%b %Y")


def count(number: int, one: str, many: str | None = None) -> str:
    """'1 server', '3 servers'."""
    return f"{number} {one if number == 1 else (many or one + 's')}"
