"""Writing the registers to the ledger: new entries (``note`` and ``glitch`` records, a glitch
opened by code too) and their updates (``note_updated`` records), each checked first
(milepost.oversight.register_checks) and appended under the ledger's write lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from milepost.drift.findings import GLITCH_KIND
from milepost.errors import UserError
from milepost.input_checks import check_multiline, check_text, shown
from milepost.ledger.chain import utc_now
from milepost.ledger.database import LedgerUnavailable, problem
from milepost.ledger.names import GLITCH, QC_PROCESS
from milepost.ledger.names import NOTE_CATEGORIES as CATEGORIES
from milepost.ledger.schema import records as T
from milepost.ledger.store import prepare
from milepost.operator import operator_name
from milepost.oversight.glitch_closing import check_closing, check_lesson, closes
from milepost.oversight.lesson_actions import load_actions
from milepost.oversight.register_checks import (
    _check_links,
    _check_note_id,
    _check_run_id,
    _check_status,
    _check_time,
    _check_type,
    _choice,
    _names,
)
from milepost.oversight.register_reading import load_notes
from milepost.oversight.registers import (
    GLITCH_ONLY_FIELDS,
    MAX_IMPACT,
    MAX_NAME,
    MAX_TITLE,
    NOTE_KIND,
    PREFIXES,
    STATUSES,
    UPDATED_KIND,
    Note,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = ["add_note", "glitch_body", "open_glitch", "run_glitch_record", "update_note"]

#: The option of each glitch field, for messages.
GLITCH_OPTIONS = {
    "resolution": "resolution",
    "customer_impact": "impact",
    "cause": "cause",
    "lesson": "lesson",
    "no_action_reason": "no-action-reason",
}


def _known_runs(conn: Connection, run_ids: Sequence[str]) -> set[str]:
    if not run_ids:
        return set()
    rows = conn.execute(select(T.c.run_id).where(T.c.run_id.in_(run_ids)).distinct())
    return {str(r[0]) for r in rows}


def _check_links_exist(
    conn: Connection, links: Mapping[str, Sequence[str]], known: Mapping[str, Note]
) -> None:
    for glitch_id in links.get("glitches", ()):
        if known.get(glitch_id) is None or known[glitch_id].type != GLITCH:
            raise UserError(
                f"linked glitch {shown(glitch_id)} is not in the ledger:"
                " `milepost note list --type glitch` shows them"
            )
    for note_id in links.get("notes", ()):
        if note_id not in known:
            raise UserError(
                f"linked note {shown(note_id)} is not in the ledger:"
                " `milepost note list` shows them"
            )
    runs = list(links.get("runs", ()))
    recorded = _known_runs(conn, runs)
    missing = [r for r in runs if r not in recorded]
    if missing:
        raise UserError(
            f"linked run {shown(missing[0])} is not in the ledger:"
            " `milepost ledger runs` shows them"
        )


def _new_id(prefix: str, known: Mapping[str, Note]) -> str:
    while True:
        candidate = prefix + secrets.token_hex(4)
        if candidate not in known:
            return candidate


def _append_checked(
    ledger: Ledger,
    build: Any,
) -> dict[str, Any]:
    """Under the write lock: load the registers, let ``build(conn, known)`` check and return
    the record (or a list of records, appended together), append it. Returns the (first)
    record."""
    try:
        with ledger.write_transaction() as conn:
            known = {n.note_id: n for n in load_notes(conn)}
            built: dict[str, Any] | list[dict[str, Any]] = build(conn, known)
            records = built if isinstance(built, list) else [built]
            ledger.append_locked(conn, [prepare(record) for record in records])
    except (SQLAlchemyError, OSError) as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}"
        ) from bad
    return records[0]


def _find(ledger: Ledger, note_id: str) -> Note:
    with ledger.read_transaction() as conn:
        for note in load_notes(conn):
            if note.note_id == note_id:
                return note
    raise UserError(f"unknown note ID {shown(note_id)}: `milepost note list` shows them")


def add_note(
    ledger: Ledger,
    type: str,
    *,
    title: str,
    text: str | None = None,
    category: str | None = None,
    owner: str | None = None,
    links: Mapping[str, Iterable[str]] | None = None,
    detected_by: str | None = None,
    affected_systems: Iterable[str] | None = None,
    customer_impact: str | None = None,
    detected_at: datetime | str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Note:
    """Append a register entry (a ``note`` record, or a ``glitch`` record for a glitch) and
    return it. ``details``: plain data code attaches (not from the command line).

    ``category`` is required for a lesson or desired change (a qc-process change is
    technology unless told otherwise) and refused for a glitch;
    ``detected_by`` is required for a glitch and refused otherwise. UserError (nothing
    appended) for any bad value or a linked run, glitch or note not in the ledger.
    """
    note_type = _check_type(type)
    clean_title = check_text(title, "title", max_len=MAX_TITLE)
    clean_text = check_multiline(text, "text") if text is not None else None
    clean_owner = check_text(owner, "owner", max_len=MAX_NAME) if owner is not None else None
    clean_links = _check_links(links)
    added_by = operator_name()
    if note_type == GLITCH:
        if category is not None:
            raise UserError("a glitch has no category: leave out --category")
        if detected_by is None:
            raise UserError(
                "a glitch needs --detected-by TEXT saying who or what found it"
                " (e.g. monitoring, customer service, qc)"
            )
        by = check_text(detected_by, "detected by", max_len=MAX_NAME)
        systems = _names(affected_systems or (), "affected system")
        impact = check_text(
            customer_impact if customer_impact is not None else "unknown",
            "customer impact",
            max_len=MAX_IMPACT,
        )
        when = _check_time(detected_at, "detected at")
        run_id = clean_links["runs"][0] if clean_links["runs"] else None

        def build(conn: Connection, known: Mapping[str, Note]) -> dict[str, Any]:
            _check_links_exist(conn, clean_links, known)
            return {
                "kind": GLITCH_KIND,
                "run_id": run_id,
                "host": None,
                "body": {
                    "glitch_id": _new_id(PREFIXES[GLITCH], known),
                    "title": clean_title,
                    "text": clean_text,
                    "detected_at": when,
                    "detected_by": by,
                    "affected_systems": systems,
                    "customer_impact": impact,
                    "resolution": None,
                    "status": STATUSES[GLITCH][0],
                    "owner": clean_owner,
                    "links": clean_links,
                    "run_id": run_id,
                    "hosts": [],
                    "resources": [],
                    "findings": [],
                    "added_by": added_by,
                },
            }

        record = _append_checked(ledger, build)
        return _find(ledger, record["body"]["glitch_id"])

    for given, option in (
        (detected_by, "--detected-by"),
        (affected_systems, "--system"),
        (customer_impact, "--impact"),
        (detected_at, "detected at"),
    ):
        if given:
            raise UserError(f"{option} is only for glitches, not a {note_type}")
    if category is None and note_type == QC_PROCESS:
        category = "technology"
    if category is None:
        raise UserError(f"a {note_type} needs --category, one of {', '.join(CATEGORIES)}")
    clean_category = _choice(category, "category", CATEGORIES)

    def build_note(conn: Connection, known: Mapping[str, Note]) -> dict[str, Any]:
        _check_links_exist(conn, clean_links, known)
        return {
            "kind": NOTE_KIND,
            "run_id": None,
            "host": None,
            "body": {
                "note_id": _new_id(PREFIXES[note_type], known),
                "type": note_type,
                "title": clean_title,
                "text": clean_text,
                "category": clean_category,
                "status": STATUSES[note_type][0],
                "owner": clean_owner,
                "links": clean_links,
                "added_by": added_by,
                **({"details": dict(details)} if details else {}),
            },
        }

    record = _append_checked(ledger, build_note)
    return _find(ledger, record["body"]["note_id"])


def glitch_body(
    *,
    title: str,
    detected_by: str,
    run_id: str | None = None,
    hosts: Iterable[str] = (),
    affected_systems: Iterable[str] = (),
    customer_impact: str = "unknown",
    text: str | None = None,
) -> dict[str, Any]:
    """The body of a glitch opened by code (without its glitch_id); long titles are cut to
    fit. UserError for hostile text."""
    clean_title = " ".join(str(title).split())[:MAX_TITLE] or "glitch"
    clean_run = _check_run_id(run_id) if run_id is not None else None
    return {
        "title": check_text(clean_title, "title", max_len=MAX_TITLE),
        "text": check_multiline(text, "text") if text is not None else None,
        "detected_at": utc_now(),
        "detected_by": check_text(detected_by, "detected by", max_len=MAX_NAME),
        "affected_systems": _names(affected_systems, "affected system"),
        "customer_impact": check_text(customer_impact, "customer impact", max_len=MAX_IMPACT),
        "resolution": None,
        "status": STATUSES[GLITCH][0],
        "owner": None,
        "links": {"runs": [clean_run] if clean_run else [], "glitches": [], "notes": []},
        "run_id": clean_run,
        "hosts": _names(hosts, "host"),
        "resources": [],
        "findings": [],
        "added_by": operator_name(),
    }


def run_glitch_record(
    run_id: str,
    title: str,
    hosts: Iterable[str],
    text: str | None = None,
    detected_by: str = "failed run",
) -> dict[str, Any]:
    """A ``glitch`` record for a run that failed, or whose QC failed (the caller writes it
    with the run's records, so it is spooled and replayed like them)."""
    body = glitch_body(title=title, detected_by=detected_by, run_id=run_id, hosts=hosts, text=text)
    return {
        "kind": GLITCH_KIND,
        "run_id": run_id,
        "host": None,
        "body": {"glitch_id": PREFIXES[GLITCH] + secrets.token_hex(4), **body},
    }


def open_glitch(
    ledger: Ledger,
    *,
    title: str,
    detected_by: str,
    run_id: str | None = None,
    hosts: Iterable[str] = (),
    affected_systems: Iterable[str] = (),
    customer_impact: str = "unknown",
    text: str | None = None,
) -> Note:
    """Open a glitch from code (a QC failure, a failed run, a rollback): append a ``glitch``
    record and return it. ``run_id`` is recorded as given (the run need not have ended);
    long titles are cut to fit. UserError for hostile text."""
    body = glitch_body(
        title=title,
        detected_by=detected_by,
        run_id=run_id,
        hosts=hosts,
        affected_systems=affected_systems,
        customer_impact=customer_impact,
        text=text,
    )
    clean_run = body["run_id"]

    def build(conn: Connection, known: Mapping[str, Note]) -> dict[str, Any]:
        return {
            "kind": GLITCH_KIND,
            "run_id": clean_run,
            "host": None,
            "body": {"glitch_id": _new_id(PREFIXES[GLITCH], known), **body},
        }

    record = _append_checked(ledger, build)
    return _find(ledger, record["body"]["glitch_id"])


def update_note(
    ledger: Ledger,
    note_id: str,
    *,
    status: str | None = None,
    owner: str | None = None,
    resolution: str | None = None,
    customer_impact: str | None = None,
    text: str | None = None,
    add_links: Mapping[str, Iterable[str]] | None = None,
    comment: str | None = None,
    cause: str | None = None,
    lesson: str | None = None,
    no_action_reason: str | None = None,
) -> Note:
    """Append a ``note_updated`` record for ``note_id`` (a lesson, desired change or glitch)
    and return the entry as it is now.

    Only what changes is recorded; a comment alone is an update. ``cause``, ``lesson``
    (an L-... the glitch taught; the lesson is linked to the glitch in the same
    transaction) and ``no_action_reason`` are a glitch's; closing a glitch needs them as
    milepost.oversight.glitch_closing says. UserError (nothing appended) for an unknown ID,
    a status not valid for the entry's type, a glitch field for something that is not a
    glitch, a glitch closed without its cause and lesson or reason, a linked ID not in the
    ledger, or nothing to change. The check and the append hold the ledger's write lock.
    """
    wanted = check_text(note_id, "note ID", max_len=80)
    clean_owner = check_text(owner, "owner", max_len=MAX_NAME) if owner is not None else None
    clean_resolution = check_multiline(resolution, "resolution") if resolution is not None else None
    clean_impact = (
        check_text(customer_impact, "customer impact", max_len=MAX_IMPACT)
        if customer_impact is not None
        else None
    )
    clean_text = check_multiline(text, "text") if text is not None else None
    clean_comment = check_multiline(comment, "comment") if comment is not None else None
    clean_cause = check_multiline(cause, "cause") if cause is not None else None
    clean_lesson = _check_note_id(lesson, "lesson") if lesson is not None else None
    clean_reason = (
        check_multiline(no_action_reason, "no-action reason")
        if no_action_reason is not None
        else None
    )
    clean_links = _check_links(add_links)
    updated_by = operator_name()
    given = {
        "owner": clean_owner,
        "resolution": clean_resolution,
        "customer_impact": clean_impact,
        "text": clean_text,
        "cause": clean_cause,
        "lesson": clean_lesson,
        "no_action_reason": clean_reason,
    }

    def build(conn: Connection, known: Mapping[str, Note]) -> list[dict[str, Any]]:
        note = known.get(wanted)
        if note is None:
            raise UserError(f"unknown note ID {shown(wanted)}: `milepost note list` shows them")
        new_status = _check_status(note.type, status) if status is not None else None
        glitch_only = [name for name in GLITCH_ONLY_FIELDS if given[name] is not None]
        if note.type != GLITCH and glitch_only:
            options = ", ".join("--" + GLITCH_OPTIONS[name] for name in glitch_only)
            verb = "is" if len(glitch_only) == 1 else "are"
            raise UserError(f"{note.note_id} is a {note.type}: {options} {verb} for glitches only")
        if wanted in clean_links["notes"] or wanted in clean_links["glitches"]:
            raise UserError(f"{note.note_id} cannot be linked to itself")
        _check_links_exist(conn, clean_links, known)
        fields = {
            name: value
            for name, value in given.items()
            if value is not None and value != getattr(note, name)
        }
        if clean_lesson is not None:
            check_lesson(clean_lesson, known)
            clean_links["notes"] = list(dict.fromkeys([*clean_links["notes"], clean_lesson]))
        if new_status == note.status:
            new_status = None
        if closes(note, new_status):
            assert new_status is not None
            check_closing(note, new_status, fields, known, load_actions(conn))
        links = {k: [v for v in ids if v not in note.links[k]] for k, ids in clean_links.items()}
        if new_status is None and not fields and not any(links.values()) and not clean_comment:
            raise UserError(
                f"nothing to change in {note.note_id} (status {note.status}): give --status,"
                " --owner, --text, --run, --glitch, --note or --comment with something new"
            )
        records = [
            {
                "kind": UPDATED_KIND,
                "run_id": None,
                "host": None,
                "body": {
                    "note_id": note.note_id,
                    "status": new_status,
                    "fields": fields,
                    "links": links,
                    "comment": clean_comment,
                    "updated_by": updated_by,
                },
            }
        ]
        if clean_lesson is not None and note.note_id not in known[clean_lesson].links["glitches"]:
            # The lesson names the glitch it comes from.
            records.append(
                {
                    "kind": UPDATED_KIND,
                    "run_id": None,
                    "host": None,
                    "body": {
                        "note_id": clean_lesson,
                        "status": None,
                        "fields": {},
                        "links": {"runs": [], "glitches": [note.note_id], "notes": []},
                        "comment": None,
                        "updated_by": updated_by,
                    },
                }
            )
        return records

    _append_checked(ledger, build)
    return _find(ledger, wanted)
