"""Spool and replay: nothing dropped, nothing doubled."""

import shutil

import pytest
import sqlalchemy as sa
from ledger_helpers import plain_records

from milepost.errors import UserError
from milepost.ledger import run_ended, run_started
from milepost.ledger.spool import pending, read_spool, replay, spool


def kinds(raw):
    with raw.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT kind FROM ledger_records ORDER BY seq"))]


def test_spool_then_replay_once(ledger, raw, project):
    ledger.append(plain_records(1))
    first = spool(plain_records(2), reason="database down")
    second = spool(plain_records(1, kind="finding"), reason="database down")
    assert first.parent == project / ".milepost" / "spool"
    assert pending() == [first, second]
    header, records = read_spool(first)
    assert header["reason"] == "database down" and len(records) == 2

    assert replay(ledger) == 3
    assert pending() == []
    assert kinds(raw) == ["note", "note", "note", "spool_replayed", "finding", "spool_replayed"]
    assert replay(ledger) == 0
    assert ledger.verify().ok


def test_replay_after_crash_before_unlink_does_not_duplicate(ledger, raw, tmp_path):
    path = spool(plain_records(2), reason="disk full")
    saved = tmp_path / "copy.jsonl"
    shutil.copy(path, saved)
    assert replay(ledger) == 2
    shutil.copy(saved, path)  # as if the process died between commit and unlink
    assert replay(ledger) == 0
    assert pending() == []
    assert kinds(raw).count("note") == 2


def test_spooled_records_keep_their_time_and_close_runs(ledger):
    start = run_started(playbook="maintain.yml")
    ledger.append([start])
    spool([run_ended(start["run_id"], "successful")], reason="database down")
    replay(ledger)
    (listed,) = ledger.runs()
    assert listed["status"] == "successful"


def test_only_finished_writers_are_replayed_automatically(ledger):
    spool(plain_records(1), reason="down")  # written by this (live) process
    assert replay(ledger, only_finished=True) == 0
    assert len(pending()) == 1


def test_damaged_spool_file_is_reported(ledger):
    path = spool(plain_records(1), reason="down")
    path.write_text(path.read_text() + "{broken\n")
    with pytest.raises(UserError, match="damaged"):
        replay(ledger)
    assert path.exists()
