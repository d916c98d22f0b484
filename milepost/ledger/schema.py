"""The ledger's tables, as SQLAlchemy Core metadata (the migrations create them).

One append-only table. ``seq`` is assigned by the writer as head + 1 (not autoincrement) so
a gap is visible; kinds are data, so new kinds of record need no schema change.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

#: Alembic's bookkeeping table for the ledger schema.
VERSION_TABLE = "ledger_schema_version"
#: The newest migration (milepost/ledger/migrations/versions/). Opening a ledger already at
#: this revision does not load Alembic at all; a test keeps the two in step.
SCHEMA_HEAD = "0001"

records = Table(
    "ledger_records",
    metadata,
    # INTEGER PRIMARY KEY on SQLite (the rowid), BIGINT elsewhere.
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("kind", String(64), nullable=False),
    Column("run_id", String(128), nullable=True),
    Column("host", String(255), nullable=True),
    Column("recorded_at", String(32), nullable=False),
    Column("body", Text(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_ledger_records_host_seq", "host", "seq"),
    Index("ix_ledger_records_run_id_seq", "run_id", "seq"),
    Index("ix_ledger_records_kind_recorded_at", "kind", "recorded_at"),
    Index("ix_ledger_records_kind_run_id", "kind", "run_id"),
    Index("ix_ledger_records_host_kind_seq", "host", "kind", "seq"),
)
