"""Four processes appending at once still make one valid chain holding every record."""

import multiprocessing
from collections import Counter

import sqlalchemy as sa
from ledger_helpers import append_worker

from milepost.ledger import Ledger

WORKERS, BATCHES, SIZE = 4, 15, 3


def test_four_processes_append_concurrently(ledger_url, raw):
    """The database starts empty: the workers also race to create the schema."""
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(target=append_worker, args=(ledger_url, w, BATCHES, SIZE))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * WORKERS

    ledger = Ledger.open(ledger_url)
    result = ledger.verify()
    ledger.close()
    assert result.ok and result.count == WORKERS * BATCHES * SIZE
    with raw.connect() as conn:
        hosts = Counter(r[0] for r in conn.execute(sa.text("SELECT host FROM ledger_records")))
        seqs = [r[0] for r in conn.execute(sa.text("SELECT seq FROM ledger_records ORDER BY seq"))]
    assert hosts == {f"w{w}": BATCHES * SIZE for w in range(WORKERS)}
    assert seqs == list(range(1, WORKERS * BATCHES * SIZE + 1))
