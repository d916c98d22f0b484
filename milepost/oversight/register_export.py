"""Exporting the registers: Markdown grouped by register, or CSV, every value made inert
(milepost.oversight.registers is the model exported).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

from milepost.errors import UserError
from milepost.input_checks import shown
from milepost.ledger.chain import utc_now
from milepost.ledger.export import csv_writer
from milepost.ledger.names import DESIRED_CHANGE, GLITCH, LESSON, QC_PROCESS
from milepost.ledger.names import NOTE_CATEGORIES as CATEGORIES
from milepost.ledger.names import NOTE_TYPES as TYPES
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
)
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


def _md_note(note: Note, out: IO[str]) -> None:
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


def _export_md(found: Sequence[Note], out: IO[str]) -> None:
    out.write("# Operations registers\n\n")
    out.write(f"Exported {utc_now()} from the maintenance ledger.\n\n")
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
                    _md_note(note, out)
            continue
        for note in items:
            _md_note(note, out)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return "; ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _export_csv(found: Sequence[Note], out: IO[str]) -> None:
    # Every cell goes through the one CSV writer: none can run as a spreadsheet formula.

    writer = csv_writer(out)
    writer.writerow(CSV_FIELDS)
    for n in found:
        row = {
            **{name: getattr(n, name, None) for name in CSV_FIELDS if hasattr(n, name)},
            "linked_runs": n.links["runs"],
            "linked_glitches": n.links["glitches"],
            "linked_notes": n.links["notes"],
            "updates": str(len(n.history)),
        }
        writer.writerow([_cell(row.get(name)) for name in CSV_FIELDS])


def export(found: Iterable[Note], fmt: str, out: IO[str]) -> int:
    """Write the entries to ``out`` and return how many.

    md: Markdown grouped by register (Lessons learned; Desired changes by category;
    Glitches), each entry with its status, owner, dates, links, text and history, every
    value escaped. csv: a header row of :data:`CSV_FIELDS`, then one row per entry (lists
    joined with "; "; a value a spreadsheet would run as a formula gets a leading ').
    """
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"export format {shown(fmt)} is not one of {', '.join(EXPORT_FORMATS)}")
    items = list(found)
    if fmt == "md":
        _export_md(items, out)
    else:
        _export_csv(items, out)
    return len(items)
