"""The dashboard's section for engineers on follow-up actions past their due date: each
overdue action of a lesson learned (milepost.oversight.lesson_actions), with its owner,
its due date, the glitches it comes from and the systems and vendors they concern.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from milepost.oversight.action_concerns import action_glitches, action_vendors
from milepost.oversight.glitch_systems import glitch_systems
from milepost.oversight.lesson_actions import overdue

if TYPE_CHECKING:
    from milepost.inventory.systems import System
    from milepost.inventory.vendors import Vendor
    from milepost.oversight.lesson_actions import Action
    from milepost.oversight.registers import Note

__all__ = ["KIND_WORDS", "OverdueActionRow", "overdue_action_rows"]

KIND_WORDS = {
    "qc-check": "Quality-control check",
    "desired-change": "Desired change",
    "runbook": "Runbook change",
    "baseline": "Baseline change",
}


@dataclass
class OverdueActionRow:
    action_id: str
    title: str
    kind: str
    kind_text: str
    owner: str
    due: str
    days_overdue: int
    lesson_id: str
    lesson_title: str
    glitches: list[str]
    systems: list[str]
    vendors: list[str]
    ref: str | None


def overdue_action_rows(
    found: Sequence[Action],
    known: Mapping[str, Note],
    systems: Mapping[str, System],
    vendors: Mapping[str, Vendor],
    host_vendor: Mapping[str, str],
    now: datetime,
    clean: Callable[[str, int], str],
) -> list[OverdueActionRow]:
    """The actions overdue at ``now``, the longest overdue first; free text cleaned."""
    rows = []
    for action in overdue(found, now):
        glitches = action_glitches(action, known)
        keys = list(dict.fromkeys(k for g in glitches for k in glitch_systems(g, systems)))
        lesson = known.get(action.lesson_id)
        rows.append(
            OverdueActionRow(
                action_id=clean(action.action_id, 80),
                title=clean(action.title, 200),
                kind=action.kind,
                kind_text=KIND_WORDS.get(action.kind, action.kind),
                owner=clean(action.owner, 100),
                due=action.due_at(now),
                days_overdue=action.days_overdue(now),
                lesson_id=clean(action.lesson_id, 80),
                lesson_title=clean(lesson.title, 200) if lesson is not None else "",
                glitches=[clean(g.note_id, 80) for g in glitches],
                systems=[systems[k].name for k in keys],
                vendors=[
                    vendors[v].name if v in vendors else v
                    for v in action_vendors(action, known, systems, host_vendor)
                ],
                ref=clean(action.ref, 300) if action.ref else None,
            )
        )
    return rows
