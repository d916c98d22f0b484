"""Export every record, with its hashes, as JSON lines or CSV; and the one CSV writer every
Milepost CSV goes through (csv_writer: no cell can run as a spreadsheet formula)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

from sqlalchemy import select

from milepost.errors import UserError
from milepost.ledger.chain import record_line
from milepost.ledger.schema import records as T

if TYPE_CHECKING:
    from milepost.ledger.store import Store

FORMATS = ("jsonl", "csv")
FIELDS = ("seq", "kind", "run_id", "host", "recorded_at", "body", "prev_hash", "hash")
BATCH = 5_000
#: A text cell starting with one of these would run as a formula in a spreadsheet (CSV
#: injection): it gets a leading apostrophe, which spreadsheets show as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A cell as written: None as empty, text starting like a formula with a leading '."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class CsvWriter:
    """csv.writer (lines ending \\n) that passes every cell through csv_cell."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])


def csv_writer(out: IO[str]) -> CsvWriter:
    """The writer for every CSV Milepost writes (ledger and register exports)."""
    return CsvWriter(out)


def _rows(
    ledger: Store, first_seq: int | None = None, last_seq: int | None = None
) -> Iterator[tuple[int, str, str | None, str | None, str, str, str, str]]:
    query = select(*(T.c[name] for name in FIELDS))
    if first_seq is not None:
        query = query.where(T.c.seq >= first_seq)
    if last_seq is not None:
        query = query.where(T.c.seq <= last_seq)
    with ledger.read_transaction() as conn:
        result = conn.execute(
            query.order_by(T.c.seq).execution_options(stream_results=True, yield_per=BATCH)
        )
        try:
            for row in result:
                yield row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]
        finally:
            result.close()


def export(
    ledger: Store,
    fmt: str,
    out: IO[str],
    *,
    first_seq: int | None = None,
    last_seq: int | None = None,
) -> int:
    """Write every record in seq order to ``out`` and return how many (``first_seq`` and
    ``last_seq``: only records first_seq..last_seq, a segment of the chain).

    jsonl: one JSON object per line {seq, kind, run_id, host, recorded_at, body (an
    object), prev_hash, hash}; the same lines as an archive file, so an export can be
    checked with `milepost ledger verify --archive` style tools. csv: a header row, then
    the same fields with body as its canonical JSON text; a text cell that would start a
    spreadsheet formula (=, +, -, @, tab, CR) gets a leading ' (csv_cell), so check hashes
    from the jsonl export, not from the CSV.
    """
    if fmt not in FORMATS:
        raise UserError(f"export format must be jsonl or csv, not {fmt!r}")
    count = 0
    if fmt == "jsonl":
        for row in _rows(ledger, first_seq, last_seq):
            out.write(record_line(*row) + "\n")
            count += 1
        return count
    writer = csv_writer(out)
    writer.writerow(FIELDS)
    for row in _rows(ledger, first_seq, last_seq):
        writer.writerow(row)
        count += 1
    return count
