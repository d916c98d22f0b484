"""The ledger segment an evidence bundle carries: every record from the first one the
period needs through the head a checkpoint signs, as `milepost ledger export --format
jsonl` writes them (milepost.ledger.export), and the same lines read back and checked.

The first record a period [start, end) needs is the earliest (by seq) of:

- every record recorded in the period;
- the run_started record of every run with a record in the period;
- the newest record of every advisory and the newest package facts of every host (the
  exposure, and so the patch deadlines, are computed from them);
- every patch exception still in force at the period's start;
- every change plan signed, applied or made for an emergency run in the period, and every
  change plan made in the period, with their signatures.

The evidence is computed from the segment alone (milepost.evidence.content), so that
`milepost evidence verify` can compute it again from the bundle, offline. A drift episode
that opened before the segment starts shows as first seen at its first record in it.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from milepost.change_control.approvals import APPROVAL_KIND, load_plans
from milepost.change_control.plans import plan_id
from milepost.ledger.book import Ledger
from milepost.ledger.chain import (
    ChainWalker,
    VerifyResult,
    canonical_body,
    format_time,
    load_body,
    record_line,
)
from milepost.ledger.export import export
from milepost.ledger.schema import records as T
from milepost.patching.advisories import load_advisories
from milepost.patching.exposure import EXCEPTION_KIND

#: The part of run_started's extra_vars.milepost_plan that survives its cut to 500
#: characters (its keys are sorted, so content_hash comes first): the plan id is made from it.
APPLIED_PLAN = re.compile(r'"content_hash":\s*"(sha256:[0-9a-f]{64})"')


def applied_plan(start: dict[str, Any] | None) -> str | None:
    """The id of the change plan a run applied (`milepost apply` passes it as the extra
    var milepost_plan, which run_started records), or None."""
    extra = (start or {}).get("extra_vars")
    value = extra.get("milepost_plan") if isinstance(extra, dict) else None
    if not isinstance(value, str):
        return None
    found = APPLIED_PLAN.search(value)
    return plan_id(found[1]) if found else None


@dataclass(frozen=True)
class SegmentRecord:
    """One record of the segment, every field as stored (the body as its canonical text)."""

    seq: int
    kind: str
    run_id: str | None
    host: str | None
    recorded_at: str
    body: str
    prev_hash: str
    hash: str

    def fields(self) -> tuple[int, str, str | None, str | None, str, str, str, str]:
        return (
            self.seq,
            self.kind,
            self.run_id,
            self.host,
            self.recorded_at,
            self.body,
            self.prev_hash,
            self.hash,
        )

    def row(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "run_id": self.run_id,
            "host": self.host,
            "recorded_at": self.recorded_at,
            "body": self.body,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def first_needed(book: Ledger, start: str, end: str, head: int) -> int:
    """The seq of the first record the period [start, end) needs (see the module's
    docstring), at most ``head``."""
    in_period = (T.c.recorded_at >= start) & (T.c.recorded_at < end)
    firsts: list[int] = [head]
    with book.read_transaction() as conn:
        firsts.append(conn.scalar(select(func.min(T.c.seq)).where(in_period)) or head)
        runs = select(T.c.run_id).where(in_period, T.c.run_id.is_not(None)).distinct()
        started = conn.execute(
            select(T.c.seq, T.c.run_id, T.c.body).where(
                T.c.kind == "run_started", T.c.run_id.in_(runs)
            )
        ).all()
        newest_facts = conn.execute(
            select(func.max(T.c.seq)).where(T.c.kind == "package_facts").group_by(T.c.host)
        ).all()
        exceptions = conn.execute(
            select(T.c.seq, T.c.body).where(T.c.kind == EXCEPTION_KIND, T.c.seq <= head)
        ).all()
        signed = conn.scalars(select(T.c.body).where(T.c.kind == APPROVAL_KIND, in_period)).all()
    firsts += [seq for seq, _, _ in started]
    firsts += [seq for (seq,) in newest_facts if seq is not None]
    start_day = start[:10]
    for seq, text in exceptions:
        expires = load_body(text).get("expires")
        if isinstance(expires, str) and expires >= start_day:
            firsts.append(seq)
    firsts += [a.seq for a in load_advisories(book).values()]
    run_ids = {run_id for _, run_id, _ in started}
    wanted = {str(load_body(text).get("plan_id")) for text in signed}
    wanted |= {p for _, _, body in started if (p := applied_plan(load_body(body)))}
    for plan in load_plans(book):
        if (
            plan.plan_id in wanted
            or plan.dry_run in run_ids
            or start <= _ledger_time(plan.created_at) < end
        ):
            firsts.append(plan.seq)
    return max(1, min(s for s in firsts if s <= head) if firsts else head)


def _ledger_time(value: str) -> str:
    try:
        return format_time(value)
    except ValueError:
        return ""


def write_segment(ledger: Ledger, out: Path, first_seq: int, last_seq: int) -> int:
    """Write records first_seq..last_seq to ``out`` as `ledger export --format jsonl` does;
    return how many."""
    with out.open("w", encoding="utf-8", newline="") as handle:
        return export(ledger, "jsonl", handle, first_seq=first_seq, last_seq=last_seq)


class SegmentError(ValueError):
    """A line of the segment file that is not a record as `ledger export` writes it."""


def read_segment(path: Path) -> list[SegmentRecord]:
    """The records of a segment file, each line checked to be exactly what `ledger export`
    writes for it; SegmentError naming the line otherwise."""
    found = []
    with path.open("r", encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                data = json.loads(line)
                record = SegmentRecord(
                    seq=int(data["seq"]),
                    kind=str(data["kind"]),
                    run_id=data["run_id"],
                    host=data["host"],
                    recorded_at=str(data["recorded_at"]),
                    body=canonical_body(data["body"]),
                    prev_hash=str(data["prev_hash"]),
                    hash=str(data["hash"]),
                )
            except (ValueError, KeyError, TypeError, RecursionError):
                raise SegmentError(f"line {number} is not a ledger record") from None
            if record_line(*record.fields()) + "\n" != line:
                raise SegmentError(
                    f"line {number} (record {record.seq}) is not written as `milepost ledger"
                    " export` writes it: it was altered"
                )
            found.append(record)
    if not found:
        raise SegmentError("it holds no record")
    return found


def check_chain(records: Sequence[SegmentRecord]) -> VerifyResult:
    """Each record's hash from its predecessor's and its canonical form (the first record's
    prev_hash is taken as given: the checkpoint over the last record anchors the chain)."""
    walker = ChainWalker(start=(records[0].seq, records[0].prev_hash))
    for record in records:
        if not walker.feed(*record.fields()):
            break
    return walker.result()


@contextmanager
def segment_ledger(records: Sequence[SegmentRecord]) -> Iterator[Ledger]:
    """A private SQLite ledger holding exactly ``records`` (seqs and hashes as they are),
    so that the queries every report uses read the segment and nothing else."""
    with tempfile.TemporaryDirectory(prefix="milepost-evidence-") as tmp:
        ledger = Ledger.open(f"sqlite:///{Path(tmp) / 'segment.sqlite'}")
        try:
            with ledger.write_transaction() as conn:
                for offset in range(0, len(records), 1000):
                    conn.execute(insert(T), [r.row() for r in records[offset : offset + 1000]])
            yield ledger
        finally:
            ledger.close()


def day_after(moment: str) -> date:
    """The first day wholly after a ledger time (its date + 1), or its date at midnight."""
    day = date.fromisoformat(moment[:10])
    if moment[11:] and moment[11:26] != "00:00:00.000000":
        return date.fromordinal(day.toordinal() + 1)
    return day
