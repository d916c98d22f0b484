"""When a glitch may be closed: the one rule, whatever command closes it.

A glitch goes to a final status (resolved or closed) only with its root cause and either
a lesson (L-...) that has at least one follow-up action (milepost.oversight.lesson_actions)
or a stated reason why no action follows. The cause, the lesson and the reason may be
recorded before (``note update``) or with the closing update (``note close``). Every
refusal is one line saying what to give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.ledger.names import LESSON
from milepost.oversight.lesson_actions import Action
from milepost.oversight.registers import FINAL_STATUSES, GLITCH, Note

__all__ = ["check_closing", "check_lesson", "closes"]

ADD_ACTION = "milepost note action add {lesson} --kind K --title TEXT --owner NAME --due YYYY-MM-DD"


def closes(note: Note, new_status: str | None) -> bool:
    """Whether moving ``note`` to ``new_status`` closes a glitch."""
    return (
        note.type == GLITCH
        and new_status is not None
        and new_status in FINAL_STATUSES[GLITCH]
        and note.is_open
    )


def check_lesson(lesson_id: str, known: Mapping[str, Note]) -> Note:
    """The lesson ``lesson_id`` names; UserError if it is not a lesson in the ledger."""
    lesson = known.get(lesson_id)
    if lesson is None:
        raise UserError(
            f"lesson {shown(lesson_id)} is not in the ledger: `milepost note list --type"
            " lesson` shows them, `milepost note add lesson --glitch G-...` records one"
        )
    if lesson.type != LESSON:
        raise UserError(f"{lesson.note_id} is a {lesson.type}, not a lesson: give --lesson L-...")
    return lesson


def check_closing(
    glitch: Note,
    status: str,
    fields: Mapping[str, str | None],
    known: Mapping[str, Note],
    found: Sequence[Action],
) -> None:
    """UserError unless ``glitch``, with ``fields`` (cause, lesson, no_action_reason given
    with the update) applied, may go to ``status``."""
    cause = fields.get("cause") or glitch.cause
    lesson_id = fields.get("lesson") or glitch.lesson
    reason = fields.get("no_action_reason") or glitch.no_action_reason
    if not cause:
        raise UserError(
            f"closing {glitch.note_id} ({status}) needs its root cause: give --cause TEXT"
        )
    if lesson_id is None and reason is None:
        raise UserError(
            f"closing {glitch.note_id} ({status}) needs a lesson with an action"
            " (--lesson L-...) or the reason no action follows (--no-action-reason TEXT)"
        )
    if lesson_id is not None:
        lesson = check_lesson(lesson_id, known)
        if reason is None and not any(a.lesson_id == lesson.note_id for a in found):
            raise UserError(
                f"lesson {lesson.note_id} has no action yet: add one (`"
                + ADD_ACTION.format(lesson=lesson.note_id)
                + "`) or give --no-action-reason TEXT"
            )
