"""Exporting the registers for steering: Markdown grouped by register, or CSV, every value
made inert (milepost.oversight.registers is the model exported), with the lessons'
follow-up actions (milepost.oversight.lesson_actions): owner, due date, done or overdue.

The Markdown is a list of sections (:data:`MD_SECTIONS`), each a function of what is
exported; a new table for steering (the QC catch rate) is one more section there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.ledger.chain import utc_now
from milepost.ledger.export import csv_writer
from milepost.ledger.names import DESIRED_CHANGE, GLITCH, LESSON, QC_PROCESS
from milepost.ledger.names import NOTE_CATEGORIES as CATEGORIES
from milepost.ledger.names import NOTE_TYPES as TYPES
from milepost.oversight.action_concerns import action_glitches
from milepost.oversight.catch_rate import CATCH_RATE_COLUMNS, CatchRate, catch_rate_rows
from milepost.oversight.lesson_actions import Action
from milepost.oversight.registers import Note

__all__ = ["EXPORT_FORMATS", "export"]

EXPORT_FORMATS = ("md", "csv")
CSV_FIELDS = (
    "note_id",
    "type",
    "category",
    "status",
    "title",
    "owner",
    "added_by",
    "added_at",
    "updated_at",
    "detected_at",
    "detected_by",
    "affected_systems",
    "customer_impact",
    "resolution",
    "run_id",
    "hosts",
    "linked_runs",
    "linked_glitches",
    "linked_notes",
    "updates",
    "text",
    # Glitches: why it happened, what was learned, why nothing follows.
    "cause",
    "lesson",
    "no_action_reason",
    # Follow-up actions (type "action"): what they change, when due, done or overdue.
    "action_kind",
    "ref",
    "due",
    "done_at",
    "overdue",
)
#: The type column of an action's row, and of a month's row of QC's catch rate.
ACTION_TYPE = "action"
CATCH_RATE_TYPE = "catch-rate"
REGISTER_TITLES = {
    LESSON: "Lessons learned",
    DESIRED_CHANGE: "Desired changes",
    GLITCH: "Glitches",
    QC_PROCESS: "Changes to quality control",
}
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|{}!~])")


def _md(value: object) -> str:
    """One value as inert Markdown: special characters backslash-escaped, so no link,
    raw HTML or heading can be smuggled in."""
    return MD_SPECIAL.sub(r"\\\1", str(value))


def _md_links(links: Mapping[str, Sequence[str]]) -> str:
    parts = [f"{kind} {', '.join(_md(i) for i in ids)}" for kind, ids in links.items() if ids]
    return "; ".join(parts) or "none"


def _md_change(entry: Mapping[str, Any]) -> str:
    parts = []
    if entry.get("status"):
        parts.append(f"status {_md(entry['status']['from'])} → {_md(entry['status']['to'])}")
    for name, value in (entry.get("fields") or {}).items():
        shown_value = " ".join(str(value).split()) if value is not None else "cleared"
        parts.append(f"{name.replace('_', ' ')}: {_md(shown_value)}")
    if entry.get("links"):
        parts.append(f"linked {_md_links(entry['links'])}")
    if entry.get("comment"):
        parts.append(f"comment: {_md(' '.join(str(entry['comment']).split()))}")
    return "; ".join(parts) or "no change"


@dataclass(frozen=True)
class _Export:
    """What is exported: the entries, the actions, and the moment overdue is judged at."""

    notes: Sequence[Note]
    actions: Sequence[Action]
    now: datetime
    #: QC's catch rate by month (milepost.oversight.catch_rate), or None: not exported.
    catch: CatchRate | None = None


def _md_action_state(action: Action, now: datetime) -> str:
    if action.status == "done":
        return f"done {action.done_at[:10] if action.done_at else ''}".strip()
    if action.is_overdue(now):
        return f"OVERDUE since {action.due}"
    return f"open, due {action.due}"


def _md_note(note: Note, export: _Export, out: IO[str]) -> None:
    out.write(f"### {_md(note.note_id)}: {_md(note.title)}\n\n")
    facts = [f"- Status: **{_md(note.status)}**", f"- Owner: {_md(note.owner or 'unassigned')}"]
    if note.category:
        facts.append(f"- Category: {_md(note.category)}")
    facts.append(f"- Added: {_md(note.added_at)} by {_md(note.added_by or 'unknown')}")
    facts.append(f"- Updated: {_md(note.updated_at)}")
    if note.type == GLITCH:
        facts.append(
            f"- Detected: {_md(note.detected_at or '-')} by {_md(note.detected_by or 'unknown')}"
        )
        if note.affected_systems:
            facts.append(f"- Affected systems: {_md(', '.join(note.affected_systems))}")
        if note.hosts:
            facts.append(f"- Hosts: {_md(', '.join(note.hosts))}")
        facts.append(f"- Customer impact: {_md(note.customer_impact or 'unknown')}")
        if note.resolution:
            facts.append(f"- Resolution: {_md(' '.join(note.resolution.split()))}")
        if note.cause:
            facts.append(f"- Root cause: {_md(' '.join(note.cause.split()))}")
        if note.lesson:
            facts.append(f"- Lesson: {_md(note.lesson)}")
        if note.no_action_reason:
            facts.append(f"- No action because: {_md(' '.join(note.no_action_reason.split()))}")
    if note.type == LESSON:
        mine = [a for a in export.actions if a.lesson_id == note.note_id]
        shown_actions = ", ".join(
            f"{_md(a.action_id)} ({_md_action_state(a, export.now)})" for a in mine
        )
        facts.append(f"- Actions: {shown_actions or 'none'}")
    facts.append(f"- Links: {_md_links(note.links)}")
    out.write("\n".join(facts) + "\n\n")
    if note.text:
        out.write("\n".join(f"> {_md(line)}".rstrip() for line in note.text.split("\n")) + "\n\n")
    if note.history:
        out.write("History:\n\n")
        for entry in note.history:
            who = _md(entry.get("by") or "unknown")
            out.write(f"- {_md(entry['at'])} by {who}: {_md_change(entry)}\n")
        out.write("\n")


def _md_registers(export: _Export, out: IO[str]) -> None:
    found = export.notes
    for note_type in TYPES:
        items = [n for n in found if n.type == note_type]
        out.write(f"## {REGISTER_TITLES[note_type]}\n\n")
        if not items:
            out.write("None recorded.\n\n")
            continue
        if note_type == DESIRED_CHANGE:
            for category in (*CATEGORIES, None):
                group = [n for n in items if n.category == category]
                if category is None:
                    group = [n for n in items if n.category not in CATEGORIES]
                if not group:
                    continue
                out.write(f"### {(category or 'other').capitalize()}\n\n")
                for note in group:
                    _md_note(note, export, out)
            continue
        for note in items:
            _md_note(note, export, out)


def _md_actions(export: _Export, out: IO[str]) -> None:
    out.write("## Follow-up actions\n\n")
    if not export.actions:
        out.write("None recorded.\n\n")
        return
    late = sum(1 for a in export.actions if a.is_overdue(export.now))
    still_open = sum(1 for a in export.actions if a.status != "done")
    out.write(
        f"{len(export.actions)} action{'' if len(export.actions) == 1 else 's'}:"
        f" {still_open} open, {late} of them overdue"
        f" (judged {_md(export.now.astimezone(UTC).date().isoformat())}).\n\n"
    )
    known = {n.note_id: n for n in export.notes}
    out.write("| Action | What | Kind | Owner | Due | State | Lesson | From glitches |\n")
    out.write("|---|---|---|---|---|---|---|---|\n")
    for a in export.actions:
        glitches = ", ".join(_md(g.note_id) for g in action_glitches(a, known)) or "-"
        what = _md(a.title) + (f" (changes {_md(a.ref)})" if a.ref else "")
        cells = [
            _md(a.action_id), what, _md(a.kind), _md(a.owner), _md(a.due),
            ("**" + _md_action_state(a, export.now) + "**") if a.is_overdue(export.now)
            else _md(_md_action_state(a, export.now)),
            _md(a.lesson_id), glitches,
        ]  # fmt: skip
        out.write("| " + " | ".join(cells) + " |\n")
    out.write("\n")


def _md_catch_rate(export: _Export, out: IO[str]) -> None:
    if export.catch is None:
        return
    out.write("## Quality control's catch rate\n\n")
    out.write(
        "Problems our own checks (QC) or monitoring found before anyone reported them, by"
        " month, with the mean times to detect and to correct (`milepost qc report`).\n\n"
    )
    out.write("| " + " | ".join(CATCH_RATE_COLUMNS) + " |\n")
    out.write("|" + "---|" * len(CATCH_RATE_COLUMNS) + "\n")
    for row in catch_rate_rows(export.catch):
        out.write("| " + " | ".join(_md(cell) for cell in row) + " |\n")
    out.write("\n")


#: The Markdown export's sections, in order.
MD_SECTIONS: tuple[Callable[[_Export, IO[str]], None], ...] = (
    _md_registers,
    _md_actions,
    _md_catch_rate,
)


def _export_md(export: _Export, out: IO[str]) -> None:
    out.write("# Operations registers\n\n")
    out.write(f"Exported {utc_now()} from the maintenance ledger.\n\n")
    for section in MD_SECTIONS:
        section(export, out)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _action_row(a: Action, export: _Export, known: Mapping[str, Note]) -> dict[str, Any]:
    return {
        "note_id": a.action_id,
        "type": ACTION_TYPE,
        "status": a.status,
        "title": a.title,
        "owner": a.owner,
        "added_by": a.added_by,
        "added_at": a.added_at,
        "updated_at": a.updated_at,
        "linked_glitches": [g.note_id for g in action_glitches(a, known)],
        "linked_notes": [a.lesson_id],
        "updates": str(len(a.history)),
        "text": a.text,
        "lesson": a.lesson_id,
        "action_kind": a.kind,
        "ref": a.ref,
        "due": a.due,
        "done_at": a.done_at,
        "overdue": "yes" if a.is_overdue(export.now) else "no",
    }


def _export_csv(export: _Export, out: IO[str]) -> None:
    # Every cell goes through the one CSV writer: none can run as a spreadsheet formula.

    writer = csv_writer(out)
    writer.writerow(CSV_FIELDS)
    for n in export.notes:
        row = {
            **{name: getattr(n, name, None) for name in CSV_FIELDS if hasattr(n, name)},
            "linked_runs": n.links["runs"],
            "linked_glitches": n.links["glitches"],
            "linked_notes": n.links["notes"],
            "updates": str(len(n.history)),
        }
        writer.writerow([_cell(row.get(name)) for name in CSV_FIELDS])
    known = {n.note_id: n for n in export.notes}
    for a in export.actions:
        row = _action_row(a, export, known)
        writer.writerow([_cell(row.get(name)) for name in CSV_FIELDS])
    for month in catch_rate_rows(export.catch) if export.catch is not None else []:
        row = {
            "note_id": month[0],
            "type": CATCH_RATE_TYPE,
            "title": "QC catch rate",
            "text": "; ".join(f"{c}: {v}" for c, v in zip(CATCH_RATE_COLUMNS[1:], month[1:],
                                                            strict=True)),
        }  # fmt: skip
        writer.writerow([_cell(row.get(name)) for name in CSV_FIELDS])


def export(
    found: Iterable[Note],
    fmt: str,
    out: IO[str],
    *,
    actions: Iterable[Action] = (),
    now: datetime | None = None,
    catch: CatchRate | None = None,
) -> int:
    """Write the entries and the follow-up ``actions`` to ``out`` and return how many
    entries. Overdue is judged at ``now`` (default: now, UTC).

    md: Markdown grouped by register (Lessons learned, each with its actions; Desired
    changes by category; Glitches, with cause, lesson or no-action reason), each entry with
    its status, owner, dates, links, text and history, then a table of the follow-up
    actions (owner, due date, done or OVERDUE) and, given ``catch``, QC's catch rate by
    month, every value escaped. csv: a header row of :data:`CSV_FIELDS`, then one row per
    entry, one per action (type "action") and one per month of ``catch`` (type
    "catch-rate", its figures in text); lists joined with "; "; a value a spreadsheet
    would run as a formula gets a leading '.
    """
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"export format {shown(fmt)} is not one of {', '.join(EXPORT_FORMATS)}")
    items = _Export(list(found), list(actions), now or datetime.now(UTC), catch)
    if fmt == "md":
        _export_md(items, out)
    else:
        _export_csv(items, out)
    return len(items.notes)
