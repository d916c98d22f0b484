"""The operations registers (lessons learned, desired changes, glitches, changes to quality
control): the model of an entry, its types, statuses and limits, and the ledger records it
is read from.

Knowledge that must survive staff changes. Every entry and every update is a ledger record
(hash-chained, append-only); an entry's current state is computed by applying its updates
in order, never stored.

note body (lessons and desired changes): note_id ("L-" lesson, "DC-" desired change, + 8
hex), type ("lesson" | "desired-change"), title, text, category ("policy" | "technology"
| "communications"), status, owner, links {runs, glitches, notes}, added_by.

glitch body (the kind milepost.drift.findings writes for a failed remediation): glitch_id ("G-" +
8 hex here), title, text, detected_at, detected_by, affected_systems, customer_impact,
resolution (null), status "open", owner, links, run_id, hosts, resources, findings,
added_by. Glitches written by other code are read with whatever subset of these fields they
have.

note_updated body: note_id (an L-, DC- or G- id), status (or null), fields {owner,
resolution, customer_impact, text, and for a glitch cause, lesson, no_action_reason: only
those that change}, links (added) {runs, glitches, notes}, comment, updated_by.

A glitch is closed (resolved or closed) only with its root cause and either a lesson that
has at least one follow-up action or a stated reason for no action
(milepost.oversight.glitch_closing); the lesson then links the glitch. Glitches closed
before that rule keep their status and are read as they are. Follow-up actions are
milepost.oversight.lesson_actions.

Entries are checked by milepost.oversight.register_checks, read from the ledger by
milepost.oversight.register_reading, written by milepost.oversight.register_writing and
exported by milepost.oversight.register_export.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from milepost.input_checks import MAX_INPUT
from milepost.ledger.names import (
    DESIRED_CHANGE,
    GLITCH,
    LESSON,
    LINK_KINDS,
    QC_PROCESS,
)
from milepost.ledger.names import NOTE_CATEGORIES as CATEGORIES
from milepost.ledger.names import NOTE_TYPES as TYPES

__all__ = [
    "CATEGORIES",
    "DESIRED_CHANGE",
    "GLITCH",
    "LESSON",
    "LINK_KINDS",
    "QC_PROCESS",
    "TYPES",
    "FINAL_STATUSES",
    "NOTE_KIND",
    "STATUSES",
    "UPDATED_KIND",
    "Note",
]

NOTE_KIND = "note"
UPDATED_KIND = "note_updated"
PREFIXES = {LESSON: "L-", DESIRED_CHANGE: "DC-", GLITCH: "G-", QC_PROCESS: "QC-"}
#: Valid statuses per type, the first one a new entry's.
STATUSES: dict[str, tuple[str, ...]] = {
    LESSON: ("open", "applied", "retired"),
    DESIRED_CHANGE: ("proposed", "accepted", "in-progress", "done", "rejected"),
    GLITCH: ("open", "investigating", "resolved", "closed"),
    QC_PROCESS: ("recorded",),
}
#: Statuses after which an entry needs nothing more (`note list --open` leaves them out).
FINAL_STATUSES: dict[str, frozenset[str]] = {
    LESSON: frozenset({"applied", "retired"}),
    DESIRED_CHANGE: frozenset({"done", "rejected"}),
    GLITCH: frozenset({"resolved", "closed"}),
    QC_PROCESS: frozenset({"recorded"}),
}

MAX_TITLE = 200
MAX_TEXT = MAX_INPUT
MAX_NAME = 100
MAX_IMPACT = 2000
MAX_RUN_ID = 128
MAX_LINKS = 100
#: Fields a note_updated record may set (the last three on a glitch only).
UPDATE_FIELDS = (
    "owner",
    "resolution",
    "customer_impact",
    "text",
    "cause",
    "lesson",
    "no_action_reason",
)
GLITCH_ONLY_FIELDS = ("resolution", "customer_impact", "cause", "lesson", "no_action_reason")
NOTE_ID = re.compile(r"(?:L|DC|G|QC)-[A-Za-z0-9._-]{1,64}")


@dataclass
class Note:
    """One register entry as its records say it is now. Times are the ledger's UTC text.

    ``history``: the updates in order, each {at, by, status, fields, links, comment}.
    The glitch fields (detected_at ... hosts) are None or empty for lessons and desired
    changes.
    """

    note_id: str
    type: str
    title: str
    text: str | None
    category: str | None
    status: str
    owner: str | None
    links: dict[str, list[str]]
    added_by: str | None
    added_at: str
    updated_at: str
    history: list[dict[str, Any]] = field(default_factory=list)
    detected_at: str | None = None
    detected_by: str | None = None
    affected_systems: list[str] = field(default_factory=list)
    customer_impact: str | None = None
    resolution: str | None = None
    run_id: str | None = None
    hosts: list[str] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    #: Glitches: the root cause, the lesson learned from it (L-...) and why no action
    #: follows (when none does); required to close it.
    cause: str | None = None
    lesson: str | None = None
    no_action_reason: str | None = None
    #: What code attached (a qc-process entry: the catalogue's digest and files).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """Not in a final status for its type."""
        return self.status not in FINAL_STATUSES.get(self.type, frozenset())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
