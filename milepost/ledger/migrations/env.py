"""Alembic environment for the ledger. Run only through milepost.ledger (Ledger.open or
`milepost ledger upgrade`), which hands over a connection already inside a locked
transaction, so two processes never migrate at once."""

from alembic import context

from milepost.ledger.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run ledger migrations through `milepost ledger upgrade`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
