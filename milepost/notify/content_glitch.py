"""What a notice about a glitch of the registers says (milepost.notify.content), and the open
glitches of a run a notice that the run completed lists.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from milepost.errors import UserError
from milepost.input_checks import check_text, shown
from milepost.inventory.systems import System
from milepost.notify.content import Content, _base, _Plain, _when
from milepost.oversight.glitch_systems import glitch_systems
from milepost.oversight.register_reading import notes
from milepost.oversight.registers import GLITCH

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger
    from milepost.notify.inventory import NotifySetup
    from milepost.oversight.registers import Note

__all__ = ["glitch"]

GLITCH_STATUS_WORDS = {
    "open": "open",
    "investigating": "being investigated",
    "resolved": "resolved",
    "closed": "closed",
}
GLITCH_ID = re.compile(r"G-[A-Za-z0-9._-]{1,64}")


def _open_glitches(
    ledger: Ledger, run_id: str, setup: NotifySetup, plain: _Plain
) -> list[dict[str, Any]]:

    found = []
    for note in notes(ledger, type=GLITCH):
        if note.is_open and (note.run_id == run_id or run_id in note.links.get("runs", [])):
            found.append(_glitch_summary(note, setup, plain))
    return found


def _glitch_systems(note: Note, setup: NotifySetup) -> list[System]:
    return [setup.systems[key] for key in glitch_systems(note, setup.systems)]


def _glitch_summary(note: Note, setup: NotifySetup, plain: _Plain) -> dict[str, Any]:
    systems = _glitch_systems(note, setup)
    return {
        "id": note.note_id,
        "title": plain(note.title),
        "status": GLITCH_STATUS_WORDS.get(note.status, note.status),
        "systems": [s.name for s in systems],
    }


def glitch(ledger: Ledger, setup: NotifySetup, note_id: str, *, now: datetime) -> Content:
    """A notice about a glitch of the registers: what, since when, which systems, what is
    being done. UserError for an id that is not a glitch."""

    wanted = check_text(note_id, "--note", max_len=80)
    if not GLITCH_ID.fullmatch(wanted):
        raise UserError(
            f"--note {shown(wanted)} is not a glitch id (G-...): `milepost note list --type"
            " glitch` shows them"
        )
    found = next((n for n in notes(ledger) if n.note_id == wanted), None)
    if found is None or found.type != GLITCH:
        raise UserError(
            f"no glitch {shown(wanted)} in the registers: `milepost note list --type glitch`"
            " shows them"
        )
    zone = ZoneInfo(setup.config.timezone)
    plain = _Plain(setup.systems)
    systems = _glitch_systems(found, setup)
    impact = found.customer_impact if found.customer_impact not in (None, "unknown") else None
    latest = None
    for update in reversed(found.history):
        latest = update.get("comment") or (update.get("fields") or {}).get("text")
        if latest:
            break
    if found.status in ("resolved", "closed") and found.resolution:
        latest = found.resolution
    context = {
        **_base(setup, systems, now),
        "glitch": {
            "id": found.note_id,
            "title": plain(found.title),
            "status": GLITCH_STATUS_WORDS.get(found.status, found.status),
            "resolved": not found.is_open,
            "opened": _when(found.detected_at or found.added_at, zone),
            "impact": plain(impact),
            "being_done": plain(latest),
            "run_id": found.run_id,
        },
    }
    about = {"note_id": found.note_id, "systems": [s.key for s in systems]}
    if found.run_id:
        about["run_id"] = found.run_id
    return Content("glitch", context, about, found.run_id, systems)
