"""The hypercare daily review: what the last day brought, for the program team.

While the program (group all) or a RUC group is in hypercare (milepost.inventory.phase,
the one rule, judged at ``now``), ``milepost report daily-review`` reads the ledger for the
day before ``now`` ([now - 24 h, now)) and lists:

- runs started in it: playbook, kind, status, the hosts that failed or were unreachable;
- glitches opened in it, and how many are open in all;
- QC checks that failed or could not run in it (qc_result records: failed, error);
- drift findings first seen in it, and how many are open in all;
- open questions both ways (milepost.oversight.questions), overdue ones first.

:func:`daily_review` returns plain data (a :class:`DailyReview`); :func:`review_text`
writes it as text for ``--out``; the ``daily_review`` notice (milepost.notify) mails it
through the notice channels from the same data. Outside hypercare there is no review
(``in_hypercare`` false) and nothing is written or sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.drift.findings import findings
from milepost.inventory.phase import HYPERCARE, PHASE_VAR, parse_phase
from milepost.inventory.reading import default_inventory, inventory_variables
from milepost.ledger.bodies import usable
from milepost.ledger.chain import format_time
from milepost.ledger.schema import records as T
from milepost.oversight.questions import TO_AGENCY, questions
from milepost.oversight.register_reading import notes
from milepost.oversight.registers import GLITCH

if TYPE_CHECKING:
    from milepost.ledger.book import Ledger

__all__ = ["DailyReview", "daily_review", "hypercare_scope", "review_text"]

QC_KIND = "qc_result"
QC_BAD = ("failed", "error")
#: Items listed per section; the rest are counted.
MAX_LISTED = 50
DAY = timedelta(hours=24)


@dataclass
class DailyReview:
    """The review of the day before ``until``: plain data, every list of plain dicts."""

    day: str
    since: str
    until: str
    in_hypercare: bool
    #: Where hypercare holds ("all", or RUC hosts) and the last end day among them (or None).
    hypercare_hosts: list[str] = field(default_factory=list)
    hypercare_ends: str | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    glitches: list[dict[str, Any]] = field(default_factory=list)
    glitches_open: int = 0
    qc_failures: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    drift_open: int = 0
    questions: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hypercare_scope(sources: Sequence[Path] | None, now: datetime) -> tuple[list[str], str | None]:
    """(where hypercare holds at ``now``: "all" and/or RUC hosts; the last end day among
    those settings, or None when one has no end). UserError for a malformed phase."""
    paths = list(sources) if sources else default_inventory()
    controller, per_host = inventory_variables(paths, [PHASE_VAR])
    settings = [("all", parse_phase(controller.get(PHASE_VAR), f"{PHASE_VAR} (group all)"))]
    settings += [
        (host, parse_phase(values.get(PHASE_VAR), f"{PHASE_VAR} of {host}"))
        for host, values in per_host.items()
    ]
    where = [name for name, phase in settings if phase.at(now) == HYPERCARE]
    ends = [phase.end for name, phase in settings if name in where]
    last = None if not ends or None in ends else max(e for e in ends if e is not None)
    return where, last.isoformat() if last else None


def _qc_failures(ledger: Ledger, since: str, until: str) -> list[dict[str, Any]]:
    with ledger.read_transaction() as conn:
        rows = conn.execute(
            select(T.c.seq, T.c.host, T.c.run_id, T.c.recorded_at, T.c.body)
            .where(T.c.kind == QC_KIND, T.c.recorded_at >= since, T.c.recorded_at < until)
            .order_by(T.c.seq)
        ).all()
    found = []
    for seq, host, run_id, recorded_at, text in rows:
        body = usable(seq, QC_KIND, text)
        if body is None or body["status"] not in QC_BAD:
            continue
        found.append(
            {
                "host": host,
                "run_id": run_id,
                "at": recorded_at,
                "check": body.get("check"),
                "status": body["status"],
                "message": body.get("message"),
            }
        )
    return found


def daily_review(
    ledger: Ledger, sources: Sequence[Path] | None = None, now: datetime | None = None
) -> DailyReview:
    """The review of the day before ``now`` (default: now, UTC)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    since, until = format_time(moment - DAY), format_time(moment)
    where, ends = hypercare_scope(sources, moment)
    review = DailyReview(
        day=moment.date().isoformat(),
        since=since,
        until=until,
        in_hypercare=bool(where),
        hypercare_hosts=where,
        hypercare_ends=ends,
    )
    if not where:
        return review
    for run in reversed(ledger.runs(since=since)):
        if run["started_at"] >= until:
            continue
        review.runs.append(
            {
                "run_id": run["run_id"],
                "playbook": run.get("playbook"),
                "kind": run.get("kind"),
                "status": run.get("status"),
                "started_at": run["started_at"],
                "failed_hosts": sorted(
                    h for h, c in run["hosts"].items() if c.get("failed") or c.get("unreachable")
                ),
            }
        )
    glitches = notes(ledger, type=GLITCH)
    review.glitches = [
        {"id": n.note_id, "title": n.title, "status": n.status, "opened": n.added_at}
        for n in glitches
        if since <= n.added_at < until
    ][:MAX_LISTED]
    review.glitches_open = sum(1 for n in glitches if n.is_open)
    review.qc_failures = _qc_failures(ledger, since, until)[:MAX_LISTED]
    drift = findings(ledger)
    review.drift = [
        {"id": f.id, "host": f.host, "resource": f.resource, "state": f.state,
         "first_seen": f.first_seen}
        for f in drift
        if since <= f.first_seen < until
    ][:MAX_LISTED]  # fmt: skip
    review.drift_open = sum(1 for f in drift if f.state == "open")
    open_questions = [q for q in questions(ledger, now=moment) if q.state == "open"]
    open_questions.sort(key=lambda q: (not q.overdue, q.due_at))
    review.questions = [
        {
            "id": q.question_id,
            "vendor": q.vendor,
            "to": "agency" if q.direction == TO_AGENCY else "vendor",
            "category": q.category,
            "subject": q.subject,
            "due_at": q.due_at,
            "overdue": q.overdue,
        }
        for q in open_questions
    ][:MAX_LISTED]
    return review


def _section(title: str, lines: list[str], empty: str) -> list[str]:
    return [title, *(lines or [f"  {empty}"]), ""]


def review_text(review: DailyReview, program: str = "Road Usage Charge program") -> str:
    """The review as plain text (what ``--out`` writes)."""
    ends = f", ends after {review.hypercare_ends}" if review.hypercare_ends else ""
    head = [
        f"Hypercare daily review, {program}: {review.day}",
        f"The day from {review.since} to {review.until} (UTC).",
        f"Hypercare: {', '.join(review.hypercare_hosts)}{ends}.",
        "",
    ]
    runs = [
        f"  {r['started_at']} {r['run_id']} {r['playbook']} ({r['kind']}): {r['status']}"
        + (f"; failed on {', '.join(r['failed_hosts'])}" if r["failed_hosts"] else "")
        for r in review.runs
    ]
    glitches = [f"  {g['id']} ({g['status']}): {g['title']}" for g in review.glitches]
    qc = [
        f"  {q['at']} {q['host']} {q['check']}: {q['status']}"
        + (f" ({q['message']})" if q["message"] else "")
        for q in review.qc_failures
    ]
    drift = [f"  {d['id']} {d['host']} {d['resource']} ({d['state']})" for d in review.drift]
    asked = [
        f"  {q['id']} {'OVERDUE ' if q['overdue'] else ''}due {q['due_at']}:"
        f" {q['vendor']} -> {q['to']}"
        + (f" ({q['category']})" if q["category"] else "")
        + f": {q['subject']}"
        for q in review.questions
    ]
    lines = [
        *head,
        *_section(f"Runs ({len(review.runs)})", runs, "no runs"),
        *_section(
            f"Glitches opened ({len(review.glitches)}; {review.glitches_open} open in all)",
            glitches,
            "none opened",
        ),
        *_section(f"QC failures ({len(review.qc_failures)})", qc, "none"),
        *_section(
            f"Drift first seen ({len(review.drift)}; {review.drift_open} open in all)",
            drift,
            "none",
        ),
        *_section(f"Open questions ({len(review.questions)})", asked, "none"),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
