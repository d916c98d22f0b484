"""Writing lessons' follow-up actions to the ledger (milepost.oversight.lesson_actions
describes them): a new action (a ``lesson_action`` record), and its updates, done or
reopened, reassigned, rescheduled (``lesson_action_updated`` records), each checked first
and appended under the ledger's write lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from milepost.errors import UserError
from milepost.input_checks import check_date, check_multiline, check_text, shown
from milepost.ledger.names import DESIRED_CHANGE
from milepost.operator import operator_name
from milepost.oversight.glitch_closing import check_lesson
from milepost.oversight.lesson_actions import (
    ACTION_ID,
    ACTION_KIND,
    ACTION_KINDS,
    ACTION_PREFIX,
    ACTION_UPDATED_KIND,
    DONE,
    Action,
    load_actions,
)
from milepost.oversight.register_checks import _check_note_id, _choice
from milepost.oversight.register_writing import _append_checked
from milepost.oversight.registers import MAX_NAME, MAX_TITLE, Note

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = ["add_action", "update_action"]

MAX_REF = 300


def _check_due(value: date | str | None) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError("an action needs --due YYYY-MM-DD: when it is to be done")
    if isinstance(value, date):
        return value.isoformat()
    return check_date(value, "due date").isoformat()


def _check_owner(value: str | None) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise UserError("an action needs --owner NAME: who sees it done")
    return check_text(value, "owner", max_len=MAX_NAME)


def _check_ref(kind: str, ref: str | None, known: Mapping[str, Note]) -> str | None:
    """What the action changes. A desired-change action names its DC-... (in the ledger);
    any other ref that looks like a register ID must be one."""
    if ref is None:
        if kind == DESIRED_CHANGE:
            raise UserError(
                "a desired-change action needs --ref DC-...: `milepost note add desired-change`"
                " records one"
            )
        return None
    text = check_text(ref, "ref", max_len=MAX_REF)
    if kind == DESIRED_CHANGE:
        note_id = _check_note_id(text, "ref")
        entry = known.get(note_id)
        if entry is None or entry.type != DESIRED_CHANGE:
            raise UserError(
                f"ref {shown(note_id)} is not a desired change in the ledger:"
                " `milepost note list --type desired-change` shows them"
            )
    return text


def _find(ledger: Ledger, action_id: str) -> Action:
    with ledger.read_transaction() as conn:
        for action in load_actions(conn):
            if action.action_id == action_id:
                return action
    raise UserError(f"unknown action {shown(action_id)}: `milepost note action list` shows them")


def add_action(
    ledger: Ledger,
    lesson_id: str,
    *,
    kind: str,
    title: str,
    owner: str | None,
    due: date | str | None,
    ref: str | None = None,
    text: str | None = None,
) -> Action:
    """Append a follow-up action to lesson ``lesson_id`` and return it. UserError (nothing
    appended) for a lesson not in the ledger, an unknown kind, no owner, a due date that is
    not a date, or a desired-change action without the DC-... it is."""
    wanted = _check_note_id(lesson_id, "lesson")
    clean_kind = _choice(kind, "action kind", ACTION_KINDS)
    clean_title = check_text(title, "title", max_len=MAX_TITLE)
    clean_owner = _check_owner(owner)
    clean_due = _check_due(due)
    clean_text = check_multiline(text, "text") if text is not None else None
    added_by = operator_name()

    def build(conn: Connection, known: Mapping[str, Note]) -> dict[str, Any]:
        lesson = check_lesson(wanted, known)
        clean_ref = _check_ref(clean_kind, ref, known)
        taken = {a.action_id for a in load_actions(conn)}
        action_id = ACTION_PREFIX + secrets.token_hex(4)
        while action_id in taken:
            action_id = ACTION_PREFIX + secrets.token_hex(4)
        return {
            "kind": ACTION_KIND,
            "run_id": None,
            "host": None,
            "body": {
                "action_id": action_id,
                "lesson_id": lesson.note_id,
                "kind": clean_kind,
                "title": clean_title,
                "text": clean_text,
                "owner": clean_owner,
                "due": clean_due,
                "ref": clean_ref,
                "added_by": added_by,
            },
        }

    record = _append_checked(ledger, build)
    return _find(ledger, record["body"]["action_id"])


def update_action(
    ledger: Ledger,
    action_id: str,
    *,
    done: bool | None = None,
    owner: str | None = None,
    due: date | str | None = None,
    ref: str | None = None,
    comment: str | None = None,
) -> Action:
    """Append an update of action ``action_id`` (``done`` True: done; False: open again;
    a new owner, due date or ref; a comment) and return it as it is now. UserError (nothing
    appended) for an unknown action, a bad value or nothing to change."""
    wanted = check_text(action_id, "action ID", max_len=80)
    if not ACTION_ID.fullmatch(wanted):
        raise UserError(
            f"action ID {shown(wanted)} is not an action ID (A-...):"
            " `milepost note action list` shows them"
        )
    clean_owner = _check_owner(owner) if owner is not None else None
    clean_due = _check_due(due) if due is not None else None
    clean_comment = check_multiline(comment, "comment") if comment is not None else None
    updated_by = operator_name()

    def build(conn: Connection, known: Mapping[str, Note]) -> dict[str, Any]:
        action = next((a for a in load_actions(conn) if a.action_id == wanted), None)
        if action is None:
            raise UserError(
                f"unknown action {shown(wanted)}: `milepost note action list` shows them"
            )
        clean_ref = _check_ref(action.kind, ref, known) if ref is not None else None
        status = None if done is None else (DONE if done else "open")
        if status == action.status:
            status = None
        fields = {
            name: value
            for name, value in (("owner", clean_owner), ("due", clean_due), ("ref", clean_ref))
            if value is not None and value != getattr(action, name)
        }
        if status is None and not fields and not clean_comment:
            raise UserError(
                f"nothing to change in {action.action_id} (status {action.status}, owner"
                f" {action.owner}, due {action.due}): give something new"
            )
        return {
            "kind": ACTION_UPDATED_KIND,
            "run_id": None,
            "host": None,
            "body": {
                "action_id": action.action_id,
                "status": status,
                "fields": fields,
                "comment": clean_comment,
                "updated_by": updated_by,
            },
        }

    _append_checked(ledger, build)
    return _find(ledger, wanted)
