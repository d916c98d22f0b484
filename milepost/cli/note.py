"""`milepost note ...`: the registers of lessons learned, desired changes and glitches,
closing a glitch with its cause and lesson, and the lessons' follow-up actions
(`milepost note action ...`, milepost.cli.note_actions).

Exit codes: 0 done; 2 bad input (one line on stderr, nothing appended).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from milepost.cli.common import JsonOption, console, open_ledger, print_json
from milepost.cli.note_actions import action_app, lesson_actions_text
from milepost.errors import UserError
from milepost.input_checks import check_text, shown
from milepost.ledger.files import atomic_file
from milepost.oversight.catch_rate import catch_rate
from milepost.oversight.lesson_actions import actions
from milepost.oversight.register_export import EXPORT_FORMATS, export
from milepost.oversight.register_reading import notes
from milepost.oversight.register_writing import add_note, update_note

if TYPE_CHECKING:
    from milepost.oversight.registers import Note

note_app = typer.Typer(
    help="Registers: lessons learned and their follow-up actions, desired changes, glitches.",
    no_args_is_help=True,
)
note_app.add_typer(action_app, name="action")


STATUS_STYLE = {
    "open": "yellow",
    "proposed": "yellow",
    "investigating": "cyan",
    "accepted": "cyan",
    "in-progress": "cyan",
    "applied": "green",
    "done": "green",
    "resolved": "green",
    "closed": "dim",
    "retired": "dim",
    "rejected": "dim",
}

RunOption = Annotated[
    list[str] | None,
    typer.Option("--run", metavar="RUN_ID", help="Link a run of the ledger (repeatable)."),
]
GlitchOption = Annotated[
    list[str] | None,
    typer.Option("--glitch", metavar="G-ID", help="Link a glitch (repeatable)."),
]
NoteOption = Annotated[
    list[str] | None,
    typer.Option("--note", metavar="ID", help="Link another register entry (repeatable)."),
]
OwnerOption = Annotated[
    str | None, typer.Option("--owner", metavar="NAME", help="Who looks after it.")
]
TextOption = Annotated[
    str | None, typer.Option("--text", metavar="TEXT", help="The details (may span lines).")
]
ImpactOption = Annotated[
    str | None,
    typer.Option("--impact", metavar="TEXT", help="Glitches: the impact on customers."),
]
CauseOption = Annotated[
    str | None,
    typer.Option("--cause", metavar="TEXT", help="Glitches: the root cause (to close one)."),
]
LessonOption = Annotated[
    str | None,
    typer.Option(
        "--lesson",
        metavar="L-ID",
        help="Glitches: the lesson learned from it (with an action, to close one); the"
        " lesson is linked to the glitch.",
    ),
]
NoActionOption = Annotated[
    str | None,
    typer.Option(
        "--no-action-reason",
        metavar="TEXT",
        help="Glitches: why no action follows (to close one without a lesson's action).",
    ),
]
CommentOption = Annotated[
    str | None, typer.Option("--comment", metavar="TEXT", help="Why, or what happened.")
]


def _styled(status: str) -> str:
    text = escape(status)
    style = STATUS_STYLE.get(status)
    return f"[{style}]{text}[/{style}]" if style else text


def _links(
    runs: list[str] | None, glitches: list[str] | None, notes: list[str] | None
) -> dict[str, list[str]]:
    return {"runs": list(runs or ()), "glitches": list(glitches or ()), "notes": list(notes or ())}


def _links_text(note: Note) -> str:
    parts = [f"{kind} {', '.join(ids)}" for kind, ids in note.links.items() if ids]
    return "; ".join(parts) or "-"


@note_app.command("add")
def note_add(
    note_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="lesson, desired-change or glitch.")
    ],
    title: Annotated[str, typer.Option("--title", metavar="TEXT", help="One line, at most 200.")],
    text: TextOption = None,
    category: Annotated[
        str | None,
        typer.Option(
            "--category",
            metavar="C",
            help="policy, technology or communications (lessons and desired changes).",
        ),
    ] = None,
    owner: OwnerOption = None,
    run: RunOption = None,
    glitch: GlitchOption = None,
    note: NoteOption = None,
    detected_by: Annotated[
        str | None,
        typer.Option(
            "--detected-by",
            metavar="TEXT",
            help="Glitches: who or what found it (monitoring, customer service, qc ...).",
        ),
    ] = None,
    system: Annotated[
        list[str] | None,
        typer.Option("--system", metavar="NAME", help="Glitches: an affected system (repeatable)."),
    ] = None,
    impact: ImpactOption = None,
) -> None:
    """Record a lesson learned, a desired change or a glitch in the ledger."""

    ledger = open_ledger()
    try:
        added = add_note(
            ledger,
            note_type,
            title=title,
            text=text,
            category=category,
            owner=owner,
            links=_links(run, glitch, note),
            detected_by=detected_by,
            affected_systems=system or (),
            customer_impact=impact,
        )
    finally:
        ledger.close()
    console.print(f"{added.type} {escape(added.note_id)} recorded")


@note_app.command("list")
def note_list(
    note_type: Annotated[
        str | None,
        typer.Option("--type", metavar="T", help="lesson, desired-change or glitch."),
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", metavar="S", help="Only this status.")
    ] = None,
    category: Annotated[
        str | None, typer.Option("--category", metavar="C", help="Only this category.")
    ] = None,
    only_open: Annotated[
        bool, typer.Option("--open", help="Only entries not in a final status.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """The registers, oldest first (every type unless --type)."""

    ledger = open_ledger()
    try:
        found = notes(ledger, type=note_type, status=status, category=category)
    finally:
        ledger.close()
    if only_open:
        found = [n for n in found if n.is_open]
    if as_json:
        print_json([n.as_dict() for n in found])
        return
    if not found:
        console.print("no register entries" + (" open" if only_open else "") + " recorded")
        return
    table = Table("id", "type", "category", "status", "title", "owner", "added", "updated")
    for n in found:
        table.add_row(
            escape(n.note_id),
            escape(n.type),
            escape(n.category or "-"),
            _styled(n.status),
            escape(n.title),
            escape(n.owner or "-"),
            escape(n.added_at[:10]),
            escape(n.updated_at[:10]),
        )
    console.print(table)
    console.print(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'}")


@note_app.command("show")
def note_show(
    note_id: Annotated[str, typer.Argument(metavar="ID", help="L-..., DC-... or G-...")],
    as_json: JsonOption = False,
) -> None:
    """One entry with its history of updates."""

    wanted = check_text(note_id, "note ID", max_len=80)
    ledger = open_ledger()
    try:
        every = notes(ledger)
        follow_ups = actions(ledger)
    finally:
        ledger.close()
    found = next((n for n in every if n.note_id == wanted), None)
    if found is None:
        raise UserError(f"unknown note ID {shown(wanted)}: `milepost note list` shows them")
    if as_json:
        print_json(found.as_dict())
        return
    n = found
    console.print(f"[bold]{escape(n.note_id)}[/bold] {escape(n.type)}: {escape(n.title)}")
    rows = [
        ("status", _styled(n.status)),
        ("category", escape(n.category or "-")) if n.type != "glitch" else None,
        ("owner", escape(n.owner or "-")),
        ("added", f"{escape(n.added_at)} by {escape(n.added_by or 'unknown')}"),
        ("updated", escape(n.updated_at)),
    ]
    if n.type == "glitch":
        rows += [
            ("detected", f"{escape(n.detected_at or '-')} by {escape(n.detected_by or 'unknown')}"),
            ("affected systems", escape(", ".join(n.affected_systems) or "-")),
            ("hosts", escape(", ".join(n.hosts) or "-")),
            ("customer impact", escape(n.customer_impact or "unknown")),
            ("resolution", escape(n.resolution or "-")),
            ("root cause", escape(n.cause or "-")),
            ("lesson", escape(n.lesson or "-")),
        ]
        if n.no_action_reason:
            rows.append(("no action because", escape(n.no_action_reason)))
        if n.resources:
            rows.append(("resources", escape(", ".join(n.resources))))
        if n.findings:
            rows.append(("findings", escape(", ".join(n.findings))))
    rows.append(("links", escape(_links_text(n))))
    linked_from = [m.note_id for m in every if n.note_id in m.links["notes"] + m.links["glitches"]]
    if linked_from:
        rows.append(("linked from", escape(", ".join(linked_from))))
    for row in rows:
        if row is not None:
            console.print(f"  {row[0]}: {row[1]}")
    if n.text:
        console.print("  text:")
        for line in n.text.split("\n"):
            console.print(f"    {escape(line)}")
    if n.type == "lesson":
        lines = lesson_actions_text(n.note_id, follow_ups, datetime.now(UTC))
        console.print("  actions:" + ("" if lines else " none (`milepost note action add`)"))
        for line in lines:
            console.print(line)
    if not n.history:
        console.print("  history: no updates")
        return
    table = Table("when (UTC)", "by", "status", "changed", "linked", "comment", title="history")
    for entry in n.history:
        change = entry.get("status")
        fields = "; ".join(
            f"{name}: {' '.join(str(value).split()) if value is not None else 'cleared'}"
            for name, value in (entry.get("fields") or {}).items()
        )
        linked = "; ".join(f"{k} {', '.join(v)}" for k, v in (entry.get("links") or {}).items())
        table.add_row(
            escape(entry["at"]),
            escape(entry.get("by") or "-"),
            escape(f"{change['from']} -> {change['to']}") if change else "-",
            escape(fields or "-"),
            escape(linked or "-"),
            escape(entry.get("comment") or "-"),
        )
    console.print(table)


@note_app.command("update")
def note_update(
    note_id: Annotated[str, typer.Argument(metavar="ID", help="L-..., DC-... or G-...")],
    status: Annotated[
        str | None, typer.Option("--status", metavar="S", help="A status valid for its type.")
    ] = None,
    owner: OwnerOption = None,
    resolution: Annotated[
        str | None, typer.Option("--resolution", metavar="TEXT", help="Glitches: how it was fixed.")
    ] = None,
    impact: ImpactOption = None,
    text: TextOption = None,
    run: RunOption = None,
    glitch: GlitchOption = None,
    note: NoteOption = None,
    comment: CommentOption = None,
    cause: CauseOption = None,
    lesson: LessonOption = None,
    no_action_reason: NoActionOption = None,
) -> None:
    """Append an update (status, owner, text, links, comment; a glitch's cause, lesson or
    no-action reason); the history is kept. A glitch is resolved or closed only with its
    root cause and a lesson with an action or a reason for none (see `note close`)."""

    ledger = open_ledger()
    try:
        updated = update_note(
            ledger,
            note_id,
            status=status,
            owner=owner,
            resolution=resolution,
            customer_impact=impact,
            text=text,
            add_links=_links(run, glitch, note),
            comment=comment,
            cause=cause,
            lesson=lesson,
            no_action_reason=no_action_reason,
        )
    finally:
        ledger.close()
    console.print(
        f"{updated.type} {escape(updated.note_id)} updated: status {escape(updated.status)},"
        f" {len(updated.history)} update(s)"
    )


@note_app.command("close")
def note_close(
    glitch_id: Annotated[str, typer.Argument(metavar="G-ID", help="The glitch.")],
    cause: CauseOption = None,
    lesson: LessonOption = None,
    no_action_reason: NoActionOption = None,
    resolution: Annotated[
        str | None, typer.Option("--resolution", metavar="TEXT", help="How it was fixed.")
    ] = None,
    status: Annotated[
        str, typer.Option("--status", metavar="S", help="resolved or closed (default).")
    ] = "closed",
    comment: CommentOption = None,
) -> None:
    """Close a glitch: its root cause (--cause), and a lesson that has at least one
    follow-up action (--lesson L-...) or the reason no action follows
    (--no-action-reason)."""

    wanted = check_text(glitch_id, "glitch ID", max_len=80)
    if not wanted.startswith("G-"):
        raise UserError(f"{shown(wanted)} is not a glitch ID (G-...): `note close` closes glitches")
    if status not in ("resolved", "closed"):
        raise UserError(f"--status {shown(status)} does not close a glitch: use resolved or closed")
    ledger = open_ledger()
    try:
        updated = update_note(
            ledger,
            wanted,
            status=status,
            resolution=resolution,
            comment=comment,
            cause=cause,
            lesson=lesson,
            no_action_reason=no_action_reason,
        )
    finally:
        ledger.close()
    follows = updated.lesson or f"no action: {updated.no_action_reason or '-'}"
    console.print(f"glitch {escape(updated.note_id)} {escape(updated.status)} ({escape(follows)})")


@note_app.command("export")
def note_export(
    fmt: Annotated[str, typer.Option("--format", metavar="md|csv", help="md or csv.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to FILE (default: standard output).")
    ] = None,
) -> None:
    """Every register entry and follow-up action (owner, due date, overdue) and QC's
    catch rate of the last six months, as Markdown (grouped by register, then the actions,
    then the catch rate) or CSV (one row each)."""

    if fmt not in EXPORT_FORMATS:
        raise UserError(f"--format {shown(fmt)} is not one of {', '.join(EXPORT_FORMATS)}")
    ledger = open_ledger()
    try:
        found = notes(ledger)
        follow_ups = actions(ledger)
        catch = catch_rate(ledger)
    finally:
        ledger.close()
    if out is None:
        export(found, fmt, sys.stdout, actions=follow_ups, catch=catch)
        sys.stdout.flush()
        return
    with atomic_file(out, newline="") as handle:
        count = export(found, fmt, handle, actions=follow_ups, catch=catch)
    print(f"milepost: exported {count} register entries to {out}", file=sys.stderr)
