"""The append-only ledger_records table and its indexes.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_records",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_ledger_records_host_seq", "ledger_records", ["host", "seq"])
    op.create_index("ix_ledger_records_run_id_seq", "ledger_records", ["run_id", "seq"])
    op.create_index("ix_ledger_records_kind_recorded_at", "ledger_records", ["kind", "recorded_at"])
    op.create_index("ix_ledger_records_kind_run_id", "ledger_records", ["kind", "run_id"])
    op.create_index("ix_ledger_records_host_kind_seq", "ledger_records", ["host", "kind", "seq"])


def downgrade() -> None:
    op.drop_table("ledger_records")
