"""Ledger rows read and written behind the Ledger's back (raw SQLite), for the tamper
tests: the stored rows, raw statements in one transaction, a row rechained."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from milepost.ledger.chain import canonical_record, chain_hash

COLUMNS = ("seq", "kind", "run_id", "host", "recorded_at", "body", "prev_hash", "hash")
Row = tuple[Any, ...]


def stored_rows(db: Path) -> list[Row]:
    with closing(sqlite3.connect(db, timeout=15)) as conn:
        query = f"SELECT {', '.join(COLUMNS)} FROM ledger_records ORDER BY seq"
        return conn.execute(query).fetchall()


def execute(db: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Raw SQL behind the Ledger's back, in one transaction."""
    with closing(sqlite3.connect(db, timeout=15)) as conn, conn:
        for statement, parameters in statements:
            conn.execute(statement, parameters)


def rehashed(row: Row, prev: str, **changes: Any) -> Row:
    """``row`` with ``changes``, chained to ``prev`` and its hash recomputed."""
    fields = dict(zip(COLUMNS, row, strict=True)) | changes
    fields["prev_hash"] = prev
    fields["hash"] = chain_hash(
        prev,
        canonical_record(
            fields["seq"],
            fields["kind"],
            fields["run_id"],
            fields["host"],
            fields["recorded_at"],
            fields["body"],
        ),
    )
    return tuple(fields[c] for c in COLUMNS)
