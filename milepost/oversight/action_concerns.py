"""What a follow-up action concerns: the glitches its lesson comes from (the lesson's
linked glitches, and those closed with it), and through them the systems and vendors
(milepost.oversight.glitch_systems).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from milepost.oversight.glitch_systems import glitch_vendors
from milepost.oversight.registers import GLITCH

if TYPE_CHECKING:
    from milepost.inventory.systems import System
    from milepost.oversight.lesson_actions import Action
    from milepost.oversight.registers import Note

__all__ = ["action_glitches", "action_vendors"]


def action_glitches(action: Action, known: Mapping[str, Note]) -> list[Note]:
    """The glitches the action's lesson comes from, in the ledger's order."""
    lesson = known.get(action.lesson_id)
    linked = set(lesson.links["glitches"]) if lesson is not None else set()
    return [
        n
        for n in known.values()
        if n.type == GLITCH and (n.note_id in linked or n.lesson == action.lesson_id)
    ]


def action_vendors(
    action: Action,
    known: Mapping[str, Note],
    systems: Mapping[str, System],
    host_vendor: Mapping[str, str],
) -> list[str]:
    """Keys of the vendors the action concerns: those its glitches concern."""
    found: list[str] = []
    for glitch in action_glitches(action, known):
        found.extend(glitch_vendors(glitch, systems, host_vendor))
    return list(dict.fromkeys(found))
