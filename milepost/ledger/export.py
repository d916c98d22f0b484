"""Export every record, with its hashes, as JSON lines or CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from sqlalchemy import select

from milepost.errors import UserError
from milepost.ledger.chain import record_line
from milepost.ledger.schema import records as T

if TYPE_CHECKING:
    from milepost.ledger.store import Ledger

FORMATS = ("jsonl", "csv")
FIELDS = ("seq", "kind", "run_id", "host", "recorded_at", "body", "prev_hash", "hash")
BATCH = 5_000


def _rows(ledger: Ledger) -> Iterator[tuple[int, str, str | None, str | None, str, str, str, str]]:
    with ledger.read_transaction() as conn:
        result = conn.execute(
            select(*(T.c[name] for name in FIELDS))
            .order_by(T.c.seq)
            .execution_options(stream_results=True, yield_per=BATCH)
        )
        try:
            for row in result:
                yield row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]
        finally:
            result.close()


def export(ledger: Ledger, fmt: str, out: IO[str]) -> int:
    """Write every record in seq order to ``out`` and return how many.

    jsonl: one JSON object per line {seq, kind, run_id, host, recorded_at, body (an
    object), prev_hash, hash}; the same lines as an archive file, so an export can be
    checked with `milepost ledger verify --archive` style tools. csv: a header row, then
    the same fields with body as its canonical JSON text.
    """
    if fmt not in FORMATS:
        raise UserError(f"export format must be jsonl or csv, not {fmt!r}")
    count = 0
    if fmt == "jsonl":
        for row in _rows(ledger):
            out.write(record_line(*row) + "\n")
            count += 1
        return count
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for row in _rows(ledger):
        writer.writerow(["" if value is None else value for value in row])
        count += 1
    return count
