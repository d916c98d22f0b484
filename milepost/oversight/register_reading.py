"""Reading the registers from the ledger: every entry (a ``note`` or ``glitch`` record) with
its updates (``note_updated`` records) applied in ledger order (milepost.oversight.registers
describes the bodies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.drift.findings import GLITCH_KIND
from milepost.ledger.bodies import usable
from milepost.ledger.names import GLITCH, LESSON, LINK_KINDS
from milepost.ledger.names import NOTE_CATEGORIES as CATEGORIES
from milepost.ledger.schema import records as T
from milepost.oversight.register_checks import _check_status, _check_type, _choice
from milepost.oversight.registers import NOTE_KIND, STATUSES, UPDATE_FIELDS, UPDATED_KIND, Note

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = ["load_notes", "notes"]


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and value != "" else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if isinstance(item, str | int | float) and item != ""]


def _links(value: Any) -> dict[str, list[str]]:
    given = value if isinstance(value, dict) else {}
    return {kind: list(dict.fromkeys(_strings(given.get(kind)))) for kind in LINK_KINDS}


def _merge_links(into: dict[str, list[str]], more: Mapping[str, Sequence[str]]) -> None:
    for kind in LINK_KINDS:
        for item in more.get(kind, ()):
            if item not in into[kind]:
                into[kind].append(item)


def _note_from(kind: str, recorded_at: str, run_id: str | None, body: dict[str, Any]) -> Note:
    if kind == GLITCH_KIND:
        links = _links(body.get("links"))
        glitch_run = _str(body.get("run_id")) or run_id
        if glitch_run and glitch_run not in links["runs"]:
            links["runs"].insert(0, glitch_run)
        status = _str(body.get("status")) or "open"
        return Note(
            note_id=str(body["glitch_id"]),
            type=GLITCH,
            title=_str(body.get("title")) or "(untitled glitch)",
            text=_str(body.get("text")) or _str(body.get("reason")),
            category=None,
            status=status,
            owner=_str(body.get("owner")),
            links=links,
            added_by=_str(body.get("added_by")),
            added_at=recorded_at,
            updated_at=recorded_at,
            detected_at=_str(body.get("detected_at")) or recorded_at,
            detected_by=_str(body.get("detected_by")),
            affected_systems=_strings(body.get("affected_systems")),
            customer_impact=_str(body.get("customer_impact")),
            resolution=_str(body.get("resolution")),
            run_id=glitch_run,
            hosts=_strings(body.get("hosts")),
            resources=_strings(body.get("resources")),
            findings=_strings(body.get("findings")),
        )
    note_type = _str(body.get("type")) or LESSON
    return Note(
        note_id=str(body["note_id"]),
        type=note_type,
        title=_str(body.get("title")) or "(untitled)",
        text=_str(body.get("text")),
        category=_str(body.get("category")),
        status=_str(body.get("status")) or STATUSES.get(note_type, ("open",))[0],
        owner=_str(body.get("owner")),
        links=_links(body.get("links")),
        added_by=_str(body.get("added_by")),
        added_at=recorded_at,
        updated_at=recorded_at,
        details=dict(body["details"]) if isinstance(body.get("details"), dict) else {},
    )


def _apply(note: Note, recorded_at: str, body: dict[str, Any]) -> None:
    status = _str(body.get("status"))
    given = body.get("fields")
    fields: dict[str, Any] = given if isinstance(given, dict) else {}
    links = _links(body.get("links"))
    entry: dict[str, Any] = {
        "at": recorded_at,
        "by": _str(body.get("updated_by")),
        "status": None,
        "fields": {},
        "links": {k: v for k, v in links.items() if v},
        "comment": _str(body.get("comment")),
    }
    if status is not None:
        entry["status"] = {"from": note.status, "to": status}
        note.status = status
    for name in UPDATE_FIELDS:
        if name in fields:
            value = _str(fields[name])
            entry["fields"][name] = value
            setattr(note, name, value)
    _merge_links(note.links, links)
    note.history.append(entry)
    note.updated_at = recorded_at


def load_notes(conn: Connection) -> list[Note]:
    """Every register entry, oldest first, with its updates applied in ledger order.

    Records without an ID are skipped; a second record with an ID already seen, and an
    update of an unknown ID, are ignored (the first record wins).
    """
    found: dict[str, Note] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.kind, T.c.recorded_at, T.c.run_id, T.c.body)
        .where(T.c.kind.in_((NOTE_KIND, GLITCH_KIND, UPDATED_KIND)))
        .order_by(T.c.seq)
    )
    for seq, kind, recorded_at, run_id, body_text in rows:
        body = usable(seq, kind, body_text)
        if body is None:
            continue
        if kind == UPDATED_KIND:
            target = found.get(str(body.get("note_id")))
            if target is not None:
                _apply(target, recorded_at, body)
            continue
        key = "glitch_id" if kind == GLITCH_KIND else "note_id"
        note_id = _str(body.get(key))
        if note_id is None or note_id in found:
            continue
        found[note_id] = _note_from(kind, recorded_at, run_id, {**body, key: note_id})
    return list(found.values())


def notes(
    ledger: Ledger,
    *,
    type: str | None = None,
    status: str | None = None,
    category: str | None = None,
) -> list[Note]:
    """Register entries, oldest first, filtered by type, status and category.
    UserError for a type, status (for the type, if given) or category that does not exist."""
    if type is not None:
        type = _check_type(type)
    if category is not None:
        category = _choice(category, "category", CATEGORIES)
    if status is not None:
        if type is not None:
            status = _check_status(type, status)
        else:
            status = _choice(status, "status", sorted({s for v in STATUSES.values() for s in v}))
    with ledger.read_transaction() as conn:
        found = load_notes(conn)
    return [
        n
        for n in found
        if (type is None or n.type == type)
        and (status is None or n.status == status)
        and (category is None or n.category == category)
    ]
