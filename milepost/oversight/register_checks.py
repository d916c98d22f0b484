"""Checks of what is given for a register entry or an update (milepost.oversight.registers):
its type, status, IDs, links, names and times. Every problem is one line (UserError).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from milepost.errors import UserError
from milepost.input_checks import check_text, shown
from milepost.ledger.chain import format_time, utc_now
from milepost.ledger.names import LINK_KINDS
from milepost.ledger.names import NOTE_TYPES as TYPES
from milepost.oversight.registers import MAX_LINKS, MAX_NAME, MAX_RUN_ID, NOTE_ID, STATUSES

__all__: list[str] = []


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def _choice(value: str, what: str, choices: Sequence[str]) -> str:
    text = str(value).strip() if isinstance(value, str) else value
    if text not in choices:
        raise UserError(f"{what} {shown(value)} is not one of {', '.join(choices)}")
    return str(text)


def _check_type(value: str) -> str:
    return _choice(value, "note type", TYPES)


def _check_status(note_type: str, value: str) -> str:
    text = value.strip() if isinstance(value, str) else value
    if text not in STATUSES[note_type]:
        raise UserError(
            f"status {shown(value)} is not valid for a {note_type}: use one of"
            f" {', '.join(STATUSES[note_type])}"
        )
    return str(text)


def _check_run_id(value: str) -> str:
    text = check_text(value, "run id", max_len=MAX_RUN_ID)
    if " " in text or text.startswith("-"):
        raise UserError(f"run id {shown(text)} is not a run id: `milepost ledger runs` shows them")
    return text


def _check_note_id(value: str, what: str = "note ID") -> str:
    text = check_text(value, what, max_len=80)
    if not NOTE_ID.fullmatch(text):
        raise UserError(
            f"{what} {shown(text)} is not a register ID (L-..., DC-... or G-...):"
            " `milepost note list` shows them"
        )
    return text


def _names(values: Iterable[str], what: str) -> list[str]:
    """One-line names, stripped, without repeats, in the order given."""
    found: dict[str, None] = {}
    for value in values:
        found.setdefault(check_text(value, what, max_len=MAX_NAME), None)
    return list(found)


def _check_links(links: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    """{runs, glitches, notes} with every ID checked for shape (not yet for existence)."""
    given = dict(links or {})
    unknown = sorted(set(given) - set(LINK_KINDS))
    if unknown:
        raise UserError(f"links {unknown} are not one of {', '.join(LINK_KINDS)}")
    checked: dict[str, list[str]] = {}
    for kind in LINK_KINDS:
        values = given.get(kind) or ()
        if isinstance(values, str):
            values = [values]
        if kind == "runs":
            ids = [_check_run_id(v) for v in values]
        else:
            ids = [
                _check_note_id(v, "linked glitch" if kind == "glitches" else "linked note")
                for v in values
            ]
        ids = list(dict.fromkeys(ids))
        if len(ids) > MAX_LINKS:
            raise UserError(f"at most {MAX_LINKS} linked {kind} are allowed, not {len(ids)}")
        checked[kind] = ids
    return checked


def _check_time(value: datetime | str | None, what: str) -> str:
    if value is None:
        return utc_now()
    if isinstance(value, str):
        check_text(value, what, max_len=64)
    try:
        return format_time(value)
    except (TypeError, ValueError, AttributeError):
        raise UserError(
            f"{what} {shown(value)} is not a time: use YYYY-MM-DD or an ISO-8601 time"
        ) from None
