"""How well quality control catches glitches, measured from the ledger: QC's catch rate.

Per calendar month (UTC) of a glitch's detection (``detected_at``):

- **caught**: glitches detected by QC or by monitoring (``detected_by``: :data:`BY_QC`,
  :data:`BY_MONITORING`: Milepost's own checks, failed runs, remediation, monitoring)
  against those **reported** by people (staff, customers, vendors: any other
  ``detected_by``). A glitch is opened when it is first detected, so a caught glitch was
  caught before anyone outside reported it. A glitch detected while a glitch linked to it
  (``links.glitches``, either way) was detected earlier and still open is the same problem
  seen again: it is counted once, with the first;
- **mean time to detect**: from the start of the earliest run linked to the glitch (its
  ``run_id`` and ``links.runs``: the change that brought it, when it is linked) to its
  ``detected_at``; glitches without a linked run that started before they were detected
  are left out of the mean;
- **mean time to correct**: from ``detected_at`` to the update that made it resolved or
  closed (after its last reopening); glitches still open are left out of the mean;
- **recurring**: glitches with the same cause as an earlier one. The cause is the
  ``cause`` (or ``root_cause``) a glitch was opened, updated or closed with, when given;
  otherwise glitches match on the same resources, or else the same title.

And over the checks' results (``qc_result``):

- **checks to review**: checks with results from six months ago or more and still run
  now that have not failed (or erred) in the last six months;
- **flaky checks**: a check that failed on a host and then passed there with no change
  between: no recorded QC catalogue change (qc-process entry, or another catalogue digest
  on the two results) and no package change on that host. Counted by the pass, in the
  months shown.

:func:`catch_rate` reads the ledger and calls :func:`measure`, a pure function of what it
read and ``now``; :func:`catch_rate_rows` gives the month table as text (the registers'
export, `milepost qc report`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.drift.findings import GLITCH_KIND
from milepost.errors import UserError
from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time
from milepost.ledger.names import GLITCH, QC_PROCESS, QC_RESULT
from milepost.ledger.schema import records as T
from milepost.oversight.register_reading import load_notes
from milepost.oversight.registers import FINAL_STATUSES, UPDATED_KIND
from milepost.oversight.scorecard import last_months

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from milepost.ledger.book import Ledger
    from milepost.oversight.registers import Note

__all__ = [
    "BY_MONITORING",
    "BY_QC",
    "CATCH_RATE_COLUMNS",
    "STALE_MONTHS",
    "CatchMonth",
    "CatchRate",
    "FlakyCheck",
    "LedgerFacts",
    "QcFact",
    "Recurrence",
    "StaleCheck",
    "catch_rate",
    "catch_rate_rows",
    "detected_how",
    "duration_text",
    "measure",
]

#: ``detected_by`` words of a glitch quality control found (`milepost qc run` writes "qc").
BY_QC = ("qc", "quality control", "quality check")
#: ``detected_by`` words of a glitch Milepost's runs or monitoring found: a failed run
#: (milepost.oversight.run_glitches), a remediation that left drift (milepost.drift).
BY_MONITORING = ("monitoring", "failed run", "remediation", "drift", "health gate", "alert")
#: A check that has not failed for this many months is listed for review.
STALE_MONTHS = 6
QC_BAD = ("failed", "error")
QC_PASSED = "passed"
CAUSE_FIELDS = ("cause", "root_cause")
STREAM = 1000
CHUNK = 500


# ------------------------------------------------------------------ what is read


@dataclass(frozen=True)
class QcFact:
    """One ``qc_result``."""

    at: str
    host: str
    check: str
    status: str
    run_id: str | None = None
    digest: str | None = None


@dataclass
class LedgerFacts:
    """What the catch rate is computed from, as read from the ledger."""

    glitches: list[Note]
    #: {glitch id: its cause} (the newest given).
    causes: dict[str, str] = field(default_factory=dict)
    #: {run id: when it started}.
    run_starts: dict[str, str] = field(default_factory=dict)
    qc_results: list[QcFact] = field(default_factory=list)
    #: When each recorded change of the QC catalogue was recorded.
    catalogue_changes: list[str] = field(default_factory=list)
    #: {host: times of its package changes}.
    package_changes: dict[str, list[str]] = field(default_factory=dict)


# ------------------------------------------------------------------ what is measured


@dataclass
class CatchMonth:
    month: str
    caught_by_qc: int = 0
    caught_by_monitoring: int = 0
    reported: int = 0
    #: Caught by QC or monitoring, of all counted, in percent (None: no glitch).
    caught_percent: float | None = None
    detect_hours: float | None = None
    detect_counted: int = 0
    correct_hours: float | None = None
    correct_counted: int = 0
    recurring: int = 0

    @property
    def caught(self) -> int:
        return self.caught_by_qc + self.caught_by_monitoring

    @property
    def total(self) -> int:
        return self.caught + self.reported


@dataclass
class Recurrence:
    """Glitches with one cause (``matched_on``: cause, resource or title)."""

    cause: str
    matched_on: str
    glitches: list[str]
    first_detected: str
    last_detected: str


@dataclass
class StaleCheck:
    check: str
    first_result: str
    last_failed: str | None
    results: int


@dataclass
class FlakyCheck:
    check: str
    times: int
    hosts: list[str]
    last_failed: str
    last_passed: str


@dataclass
class CatchRate:
    generated_at: str
    months: list[CatchMonth]
    recurring: list[Recurrence]
    stale_checks: list[StaleCheck]
    flaky_checks: list[FlakyCheck]
    #: Definitions, for whoever reads the figures.
    stale_months: int = STALE_MONTHS

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for month, given in zip(data["months"], self.months, strict=True):
            month["caught"] = given.caught
            month["total"] = given.total
        return data


def detected_how(detected_by: str | None) -> str:
    """ "qc", "monitoring" or "reported" (by people: staff, customers, vendors)."""
    text = " ".join(str(detected_by or "").lower().replace("-", " ").split())
    if text in BY_QC or text.startswith("qc "):
        return "qc"
    if text in BY_MONITORING:
        return "monitoring"
    return "reported"


def _time(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return format_time(value)
    except (ValueError, TypeError):
        return None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _hours(start: str, end: str) -> float:
    return (_moment(end) - _moment(start)).total_seconds() / 3600.0


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _months_before(moment: datetime, months: int) -> datetime:
    month = moment.month - months
    year = moment.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    day = min(moment.day, 28)
    return moment.replace(year=year, month=month, day=day)


def _corrected_at(glitch: Note) -> str | None:
    """When it was last made resolved or closed, if it still is."""
    final = FINAL_STATUSES[GLITCH]
    corrected = glitch.added_at if glitch.status in final and not glitch.history else None
    for entry in glitch.history:
        change = entry.get("status")
        if not change:
            continue
        was_final, is_final = change.get("from") in final, change.get("to") in final
        if is_final and not was_final:
            corrected = entry.get("at")
        elif not is_final:
            corrected = None
    return corrected if glitch.status in final else None


def _words(text: str) -> str:
    return " ".join(text.lower().split())


def _cause(glitch: Note, causes: Mapping[str, str]) -> tuple[str, str]:
    """(how it matches, the key): its cause, else its resources, else its title."""
    cause = causes.get(glitch.note_id)
    if cause and cause.strip():
        return "cause", _words(cause)
    if glitch.resources:
        return "resource", ", ".join(sorted(glitch.resources))
    return "title", _words(glitch.title)


def _detected(glitch: Note) -> str:
    return _time(glitch.detected_at) or glitch.added_at


def _duplicates(glitches: Sequence[Note], corrected: Mapping[str, str | None]) -> set[str]:
    """Glitches detected while a glitch linked to them, detected earlier, was open."""
    by_id = {g.note_id: g for g in glitches}
    linked: dict[str, set[str]] = defaultdict(set)
    for g in glitches:
        for other in g.links.get("glitches", ()):
            if other in by_id and other != g.note_id:
                linked[g.note_id].add(other)
                linked[other].add(g.note_id)
    found = set()
    for g in glitches:
        seen = _detected(g)
        for other_id in linked[g.note_id]:
            first = _detected(by_id[other_id])
            fixed = corrected.get(other_id)
            if (first, other_id) < (seen, g.note_id) and (fixed is None or fixed > seen):
                found.add(g.note_id)
                break
    return found


def _flaky(facts: LedgerFacts, start: str, end: str) -> list[FlakyCheck]:
    series: dict[tuple[str, str], list[QcFact]] = defaultdict(list)
    for fact in facts.qc_results:
        if fact.status in QC_BAD or fact.status == QC_PASSED:
            series[(fact.host, fact.check)].append(fact)
    changes = sorted(facts.catalogue_changes)
    found: dict[str, FlakyCheck] = {}
    for (host, check), results in sorted(series.items()):
        packages = facts.package_changes.get(host, [])
        for before, after in zip(results, results[1:], strict=False):
            if before.status not in QC_BAD or after.status != QC_PASSED:
                continue
            if not start <= after.at < end:
                continue
            if before.digest and after.digest and before.digest != after.digest:
                continue
            if any(before.at < at <= after.at for at in (*changes, *packages)):
                continue
            entry = found.setdefault(check, FlakyCheck(check, 0, [], before.at, after.at))
            entry.times += 1
            if host not in entry.hosts:
                entry.hosts.append(host)
            if after.at >= entry.last_passed:
                entry.last_failed, entry.last_passed = before.at, after.at
    for entry in found.values():
        entry.hosts.sort()
    return sorted(found.values(), key=lambda f: (-f.times, f.check))


def _stale(facts: LedgerFacts, cutoff: str) -> list[StaleCheck]:
    first: dict[str, str] = {}
    failed: dict[str, str] = {}
    recent: dict[str, int] = defaultdict(int)
    for fact in facts.qc_results:
        first[fact.check] = min(first.get(fact.check, fact.at), fact.at)
        if fact.status in QC_BAD:
            failed[fact.check] = max(failed.get(fact.check, fact.at), fact.at)
        if fact.at >= cutoff:
            recent[fact.check] += 1
    return [
        StaleCheck(check, first[check], failed.get(check), recent[check])
        for check in sorted(first)
        if first[check] <= cutoff
        and recent[check]
        and (check not in failed or failed[check] < cutoff)
    ]


def _check_months(months: int) -> None:
    if isinstance(months, bool) or not isinstance(months, int) or months < 1:
        raise UserError(f"--months must be a whole number of at least 1, not {months!r}")


def measure(facts: LedgerFacts, months: int, now: datetime) -> CatchRate:
    """QC's catch rate for the ``months`` calendar months up to ``now``'s (UTC), from
    ``facts`` alone (milepost.oversight.catch_rate describes each figure)."""
    _check_months(months)
    moment = now.astimezone(UTC)
    periods = last_months(moment.date(), months)
    start, end = periods[0].start_text, periods[-1].end_text
    rows = {p.label: CatchMonth(p.label) for p in periods}
    glitches = sorted(facts.glitches, key=lambda g: (_detected(g), g.note_id))
    corrected = {g.note_id: _corrected_at(g) for g in glitches}
    duplicates = _duplicates(glitches, corrected)
    counted = [g for g in glitches if g.note_id not in duplicates]

    detect: dict[str, list[float]] = defaultdict(list)
    correct: dict[str, list[float]] = defaultdict(list)
    groups: dict[tuple[str, str], list[Note]] = defaultdict(list)
    for g in counted:
        seen = _detected(g)
        key = _cause(g, facts.causes)
        recurs = bool(groups[key])
        groups[key].append(g)
        row = rows.get(seen[:7])
        if row is None:
            continue
        how = detected_how(g.detected_by)
        if how == "qc":
            row.caught_by_qc += 1
        elif how == "monitoring":
            row.caught_by_monitoring += 1
        else:
            row.reported += 1
        row.recurring += recurs
        runs = [r for r in dict.fromkeys([g.run_id, *g.links["runs"]]) if r]
        began = [s for s in (facts.run_starts.get(r) for r in runs) if s and s <= seen]
        if began:
            detect[row.month].append(_hours(min(began), seen))
        fixed = corrected[g.note_id]
        if fixed is not None and fixed >= seen:
            correct[row.month].append(_hours(seen, fixed))
    for row in rows.values():
        row.caught_percent = round(100.0 * row.caught / row.total, 1) if row.total else None
        row.detect_hours, row.detect_counted = _mean(detect[row.month]), len(detect[row.month])
        row.correct_hours, row.correct_counted = _mean(correct[row.month]), len(correct[row.month])

    recurring = [
        Recurrence(
            cause=key[1],
            matched_on=key[0],
            glitches=[g.note_id for g in items],
            first_detected=_detected(items[0]),
            last_detected=_detected(items[-1]),
        )
        for key, items in groups.items()
        if len(items) > 1 and start <= _detected(items[-1]) < end
    ]
    recurring.sort(key=lambda r: (r.last_detected, r.cause), reverse=True)
    cutoff = format_time(_months_before(moment, STALE_MONTHS))
    return CatchRate(
        generated_at=format_time(moment),
        months=list(rows.values()),
        recurring=recurring,
        stale_checks=_stale(facts, cutoff),
        flaky_checks=_flaky(facts, start, min(end, format_time(moment))),
    )


# ------------------------------------------------------------------ reading the ledger


def _causes(conn: Connection) -> dict[str, str]:
    """{glitch id: its newest cause}: a glitch's ``cause`` and the ``fields`` of its
    updates (``cause`` or ``root_cause``)."""
    found: dict[str, str] = {}
    rows = conn.execute(
        select(T.c.seq, T.c.kind, T.c.body)
        .where(T.c.kind.in_((GLITCH_KIND, UPDATED_KIND)))
        .order_by(T.c.seq)
    )
    for seq, kind, text in rows:
        body = usable(seq, kind, text)
        if body is None:
            continue
        key = body.get("glitch_id") if kind == GLITCH_KIND else body.get("note_id")
        fields = body if kind == GLITCH_KIND else body.get("fields")
        if not isinstance(key, str) or not isinstance(fields, dict):
            continue
        for name in CAUSE_FIELDS:
            value = fields.get(name)
            if isinstance(value, str) and value.strip():
                found[key] = value[:1000]
    return found


def _chunks(items: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_starts(conn: Connection, run_ids: Iterable[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for batch in _chunks(sorted(set(run_ids))):
        rows = conn.execute(
            select(T.c.seq, T.c.run_id, T.c.recorded_at, T.c.body).where(
                T.c.kind == "run_started", T.c.run_id.in_(batch)
            )
        )
        for seq, run_id, recorded_at, text in rows:
            body = usable(seq, "run_started", text)
            if body is not None and run_id not in found:
                found[run_id] = _time(body.get("started_at")) or recorded_at
    return found


def _qc_results(conn: Connection) -> list[QcFact]:
    found = []
    result = conn.execute(
        select(T.c.seq, T.c.run_id, T.c.host, T.c.recorded_at, T.c.body)
        .where(T.c.kind == QC_RESULT)
        .order_by(T.c.seq)
        .execution_options(yield_per=STREAM)
    )
    try:
        for seq, run_id, host, recorded_at, text in result:
            body = usable(seq, QC_RESULT, text)
            if body is None or not host:
                continue
            digest = body.get("catalogue_sha256")
            found.append(
                QcFact(
                    at=recorded_at,
                    host=str(host),
                    check=str(body.get("check") or "a check"),
                    status=str(body["status"]),
                    run_id=run_id,
                    digest=digest if isinstance(digest, str) else None,
                )
            )
    finally:
        result.close()
    return found


def _package_changes(conn: Connection, hosts: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for batch in _chunks(sorted(set(hosts))):
        rows = conn.execute(
            select(T.c.seq, T.c.host, T.c.recorded_at, T.c.body).where(
                T.c.kind == "package_change", T.c.host.in_(batch)
            )
        )
        for seq, host, recorded_at, text in rows:
            if usable(seq, "package_change", text) is not None:
                found[str(host)].append(recorded_at)
    return dict(found)


def read_facts(ledger: Ledger) -> LedgerFacts:
    """What :func:`measure` needs, read in one transaction; unusable records are skipped
    with one warning each (milepost.ledger.bodies)."""
    with ledger.read_transaction() as conn:
        entries = load_notes(conn)
        glitches = [n for n in entries if n.type == GLITCH]
        changes = [
            n.added_at
            for n in entries
            if n.type == QC_PROCESS and n.details.get("catalogue_sha256")
        ]
        results = _qc_results(conn)
        failed_hosts = {r.host for r in results if r.status in QC_BAD}
        runs = {r for g in glitches for r in (g.run_id, *g.links["runs"]) if r}
        return LedgerFacts(
            glitches=glitches,
            causes=_causes(conn),
            run_starts=_run_starts(conn, runs),
            qc_results=results,
            catalogue_changes=changes,
            package_changes=_package_changes(conn, failed_hosts),
        )


def catch_rate(ledger: Ledger, months: int = 6, now: datetime | None = None) -> CatchRate:
    """QC's catch rate from ``ledger`` for the ``months`` months up to ``now`` (default:
    now, UTC)."""
    _check_months(months)  # bad input before any reading
    return measure(read_facts(ledger), months, now or datetime.now(UTC))


# ------------------------------------------------------------------ as text

#: The month table's columns (catch_rate_rows).
CATCH_RATE_COLUMNS = (
    "Month",
    "Caught by QC",
    "Caught by monitoring",
    "Reported by people",
    "Caught first",
    "Mean time to detect",
    "Mean time to correct",
    "Recurring",
)


def duration_text(hours: float | None) -> str:
    """'40 min', '5.5 hours', '3.2 days', or '-'."""
    if hours is None:
        return "-"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f}".rstrip("0").rstrip(".") + " hours"
    return f"{hours / 24:.1f}".rstrip("0").rstrip(".") + " days"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def catch_rate_rows(rate: CatchRate) -> list[tuple[str, ...]]:
    """The month table as text, one row per month (columns :data:`CATCH_RATE_COLUMNS`)."""
    return [
        (
            m.month,
            str(m.caught_by_qc),
            str(m.caught_by_monitoring),
            str(m.reported),
            _percent(m.caught_percent),
            duration_text(m.detect_hours),
            duration_text(m.correct_hours),
            str(m.recurring),
        )
        for m in rate.months
    ]
