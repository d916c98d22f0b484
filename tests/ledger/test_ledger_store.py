"""Appending, reading back and the write path's failure modes, on both backends."""

import json
import os
import threading

import pytest
import sqlalchemy as sa
from ledger_helpers import plain_records, sample_run

from milepost.errors import UserError
from milepost.ledger import Ledger, LedgerUnavailable
from milepost.ledger.chain import GENESIS_HASH


def test_append_verify_round_trip(ledger):
    assert ledger.verify().ok and ledger.verify().count == 0
    assert ledger.append(plain_records(3)) == [1, 2, 3]
    assert ledger.append(plain_records(2)) == [4, 5]
    assert ledger.append([]) == []
    result = ledger.verify()
    assert result.ok and result.count == 5 and result.head_seq == 5 and result.first_seq == 1


def test_records_are_stored_canonically_and_chained(ledger, raw):
    ledger.append(
        [
            {
                "kind": "note",
                "run_id": "r1",
                "host": "web1",
                "body": {"b": 1, "a": "ü"},
                "recorded_at": "2025-03-04T05:06:07+02:00",
            }
        ]
    )
    ledger.append(plain_records(1))
    with raw.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM ledger_records ORDER BY seq")).mappings().all()
    assert rows[0]["body"] == '{"a":"ü","b":1}'
    assert rows[0]["recorded_at"] == "2025-03-04T03:06:07.000000Z"
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert rows[1]["prev_hash"] == rows[0]["hash"]


def test_run_ended_gets_per_host_counts(ledger, raw):
    run_id = sample_run(ledger, hosts=2, tasks=3)
    with raw.connect() as conn:
        body = conn.execute(
            sa.text("SELECT body FROM ledger_records WHERE kind = 'run_ended'")
        ).scalar_one()
    hosts = json.loads(body)["hosts"]
    assert sorted(hosts) == ["host0", "host1"]
    assert sum(hosts["host0"].values()) == 3
    assert ledger.run(run_id)["hosts"] == {h: dict(sorted(c.items())) for h, c in hosts.items()}


@pytest.mark.parametrize(
    "record",
    [
        {"run_id": None, "host": None, "body": {}},
        {"kind": "note", "body": []},
        {"kind": "note", "body": {}, "surprise": 1},
        {"kind": "note", "body": {}, "recorded_at": "yesterday"},
        {"kind": "note", "host": "", "body": {}},
    ],
)
def test_malformed_records_are_refused_whole(ledger, record):
    with pytest.raises(UserError):
        ledger.append([{"kind": "note", "body": {}}, record])
    assert ledger.verify().count == 0


def test_unwritable_database_raises_ledger_unavailable(ledger_url, tmp_path):
    if ledger_url.startswith("sqlite"):
        bad = tmp_path / "gone.sqlite"
        bad.write_text("not a database at all\n" * 10)
        url = f"sqlite:///{bad}"
    else:
        url = "postgresql+psycopg://milepost:secret-pw@127.0.0.1:1/none"
    with pytest.raises(LedgerUnavailable) as caught:
        Ledger(url).append(plain_records(1))
    assert "secret-pw" not in str(caught.value) and "\n" not in str(caught.value)


def test_threads_share_a_ledger(ledger):
    def work(n):
        for _ in range(5):
            ledger.append(plain_records(2))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = ledger.verify()
    assert result.ok and result.count == 40


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_gets_its_own_connections(ledger):
    ledger.append(plain_records(1))  # the parent holds pooled connections now
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            ledger.append(plain_records(2))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ledger.append(plain_records(1))
    result = ledger.verify()
    assert result.ok and result.count == 4


def test_open_is_idempotent_and_reports_revision(ledger_url):
    first = Ledger.open(ledger_url)
    second = Ledger.open(ledger_url)
    assert first.revision() == second.revision() == second.upgrade()
    first.close()
    second.close()


def test_schema_head_constant_matches_the_migrations():
    from milepost.ledger.database import _script_head
    from milepost.ledger.schema import SCHEMA_HEAD

    assert _script_head()[0] == SCHEMA_HEAD


def test_sqlite_connections_use_wal_and_full_sync(tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'pragmas.sqlite'}")
    for _ in range(2):  # every pooled connection, not just the first
        with ledger.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    ledger.close()
