"""The operations registers, in the ledger: lessons learned, desired changes, glitches.

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
resolution, customer_impact, text: only those that change}, links (added) {runs, glitches,
notes}, comment, updated_by.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from milepost.drift.findings import GLITCH_KIND
from milepost.errors import UserError
from milepost.input_checks import MAX_INPUT, check_multiline, check_text, shown
from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time, utc_now
from milepost.ledger.names import (
    DESIRED_CHANGE,
    GLITCH,
    LESSON,
    LINK_KINDS,
    QC_PROCESS,
)
from milepost.ledger.names import NOTE_CATEGORIES as CATEGORIES
from milepost.ledger.names import NOTE_TYPES as TYPES
from milepost.ledger.schema import records as T
from milepost.ledger.store import LedgerUnavailable, prepare, problem
from milepost.operator import operator_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger

__all__ = [
    "CATEGORIES",
    "DESIRED_CHANGE",
    "GLITCH",
    "LESSON",
    "LINK_KINDS",
    "QC_PROCESS",
    "TYPES",
    "EXPORT_FORMATS",
    "FINAL_STATUSES",
    "NOTE_KIND",
    "STATUSES",
    "UPDATED_KIND",
    "Note",
    "add_note",
    "export",
    "load_notes",
    "notes",
    "open_glitch",
    "update_note",
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

MAX_TITLE = 200
MAX_TEXT = MAX_INPUT
MAX_NAME = 100
MAX_IMPACT = 2000
MAX_RUN_ID = 128
MAX_LINKS = 100
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
    #: What code attached (a qc-process entry: the catalogue's digest and files).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        """Not in a final status for its type."""
        return self.status not in FINAL_STATUSES.get(self.type, frozenset())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ input checks


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def _choice(value: str, what: str, choices: Sequence[str]) -> str:
    text = str(value).strip() if isinstance(value, str) else value
    if text not in choices:
        raise UserError(f"{what} {shown(value)} is not one of {', '.join(choices)}")
    return str(text)


def _check_type(value: str) -> str:
    return _choice(value, "note type", TYPES)


def _check_status(note_type: str, value: str) -> str:
    text = value.strip() if isinstance(value, str) else value
    if text not in STATUSES[note_type]:
        raise UserError(
            f"status {shown(value)} is not valid for a {note_type}: use one of"
            f" {', '.join(STATUSES[note_type])}"
        )
    return str(text)


def _check_run_id(value: str) -> str:
    text = check_text(value, "run id", max_len=MAX_RUN_ID)
    if " " in text or text.startswith("-"):
        raise UserError(f"run id {shown(text)} is not a run id: `milepost ledger runs` shows them")
    return text


def _check_note_id(value: str, what: str = "note ID") -> str:
    text = check_text(value, what, max_len=80)
    if not NOTE_ID.fullmatch(text):
        raise UserError(
            f"{what} {shown(text)} is not a register ID (L-..., DC-... or G-...):"
            " `milepost note list` shows them"
        )
    return text


def _names(values: Iterable[str], what: str) -> list[str]:
    """One-line names, stripped, without repeats, in the order given."""
    found: dict[str, None] = {}
    for value in values:
        found.setdefault(check_text(value, what, max_len=MAX_NAME), None)
    return list(found)


def _check_links(links: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    """{runs, glitches, notes} with every ID checked for shape (not yet for existence)."""
    given = dict(links or {})
    unknown = sorted(set(given) - set(LINK_KINDS))
    if unknown:
        raise UserError(f"links {unknown} are not one of {', '.join(LINK_KINDS)}")
    checked: dict[str, list[str]] = {}
    for kind in LINK_KINDS:
        values = given.get(kind) or ()
        if isinstance(values, str):
            values = [values]
        if kind == "runs":
            ids = [_check_run_id(v) for v in values]
        else:
            ids = [
                _check_note_id(v, "linked glitch" if kind == "glitches" else "linked note")
                for v in values
            ]
        ids = list(dict.fromkeys(ids))
        if len(ids) > MAX_LINKS:
            raise UserError(f"at most {MAX_LINKS} linked {kind} are allowed, not {len(ids)}")
        checked[kind] = ids
    return checked


def _check_time(value: datetime | str | None, what: str) -> str:
    if value is None:
        return utc_now()
    if isinstance(value, str):
        check_text(value, what, max_len=64)
    try:
        return format_time(value)
    except (TypeError, ValueError, AttributeError):
        raise UserError(
            f"{what} {shown(value)} is not a time: use YYYY-MM-DD or an ISO-8601 time"
        ) from None


# ------------------------------------------------------------------ reading


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
    for name in ("owner", "resolution", "customer_impact", "text"):
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


# ------------------------------------------------------------------ writing


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
    the record, append it. Returns the record."""
    try:
        with ledger.write_transaction() as conn:
            known = {n.note_id: n for n in load_notes(conn)}
            record: dict[str, Any] = build(conn, known)
            ledger.append_locked(conn, [prepare(record)])
    except (SQLAlchemyError, OSError) as bad:
        raise LedgerUnavailable(
            f"cannot write to the ledger {ledger.masked_url}: {problem(bad)}"
        ) from bad
    return record


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
) -> Note:
    """Append a ``note_updated`` record for ``note_id`` (a lesson, desired change or glitch)
    and return the entry as it is now.

    Only what changes is recorded; a comment alone is an update. UserError (nothing
    appended) for an unknown ID, a status not valid for the entry's type, a resolution or
    customer impact for something that is not a glitch, a linked ID not in the ledger, or
    nothing to change. The check and the append hold the ledger's write lock.
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
    clean_links = _check_links(add_links)
    updated_by = operator_name()

    def build(conn: Connection, known: Mapping[str, Note]) -> dict[str, Any]:
        note = known.get(wanted)
        if note is None:
            raise UserError(f"unknown note ID {shown(wanted)}: `milepost note list` shows them")
        new_status = _check_status(note.type, status) if status is not None else None
        if note.type != GLITCH and (clean_resolution is not None or clean_impact is not None):
            raise UserError(
                f"{note.note_id} is a {note.type}: --resolution and --impact are for glitches"
            )
        if wanted in clean_links["notes"] or wanted in clean_links["glitches"]:
            raise UserError(f"{note.note_id} cannot be linked to itself")
        _check_links_exist(conn, clean_links, known)
        fields = {
            name: value
            for name, value in (
                ("owner", clean_owner),
                ("resolution", clean_resolution),
                ("customer_impact", clean_impact),
                ("text", clean_text),
            )
            if value is not None and value != getattr(note, name)
        }
        links = {k: [v for v in ids if v not in note.links[k]] for k, ids in clean_links.items()}
        if new_status == note.status:
            new_status = None
        if new_status is None and not fields and not any(links.values()) and not clean_comment:
            raise UserError(
                f"nothing to change in {note.note_id} (status {note.status}): give --status,"
                " --owner, --text, --run, --glitch, --note or --comment with something new"
            )
        return {
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

    _append_checked(ledger, build)
    return _find(ledger, wanted)


# ------------------------------------------------------------------ export

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
    from milepost.ledger.export import csv_writer

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
