"""Archive (the live chain and the archive file each still verify) and export."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from milepost.errors import MilepostError, UserError
from milepost.ledger import verify_archive
from milepost.ledger.archive import archive as archive_records
from milepost.ledger.chain import canonical_body, canonical_record, chain_hash
from milepost.ledger.checkpoint import load_checkpoint, write_checkpoint


def dated(n, day, start=0):
    return [
        {
            "kind": "note",
            "run_id": None,
            "host": "h",
            "body": {"i": start + i},
            "recorded_at": f"2025-01-{day:02d}T12:00:00Z",
        }
        for i in range(n)
    ]


def test_archive_moves_prefix_and_both_parts_verify(ledger, raw, tmp_path):
    ledger.append(dated(5, 1) + dated(4, 10, start=5))
    out = tmp_path / "archive-2025-01.jsonl"
    assert archive_records(ledger, datetime(2025, 1, 5, tzinfo=UTC), out) == 5

    live = ledger.verify()
    assert live.ok and live.first_seq == 6 and live.count == 5  # 4 notes + the anchor
    assert verify_archive(out).ok
    assert verify_archive(out, ledger=ledger).ok

    lines = out.read_text().splitlines()
    proof = json.loads(lines[-1])["archive_proof"]
    assert (proof["first_seq"], proof["last_seq"], proof["count"]) == (1, 5, 5)
    with raw.connect() as conn:
        anchor = json.loads(
            conn.execute(
                sa.text("SELECT body FROM ledger_records WHERE kind = 'archive_anchor'")
            ).scalar_one()
        )
    assert anchor["archived_through_seq"] == 5 and anchor["archive_file"] == out.name

    # A second archive takes the next prefix, anchor included; everything still verifies.
    ledger.append(dated(1, 20, start=100))
    out2 = tmp_path / "archive-2.jsonl"
    assert archive_records(ledger, datetime(2025, 1, 15, tzinfo=UTC), out2) == 4
    assert ledger.verify().ok and verify_archive(out2).ok
    assert (
        archive_records(ledger, datetime(2025, 1, 15, tzinfo=UTC), tmp_path / "nothing.jsonl") == 0
    )
    assert not (tmp_path / "nothing.jsonl").exists()


def test_archive_file_tampering_is_caught(ledger, tmp_path):
    ledger.append(dated(4, 1) + dated(1, 9))
    out = tmp_path / "a.jsonl"
    archive_records(ledger, datetime(2025, 1, 5, tzinfo=UTC), out)
    lines = out.read_text().splitlines()
    record = json.loads(lines[1])
    record["body"] = {"i": 42}
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    result = verify_archive(tampered)
    assert not result.ok and result.first_bad_seq == 2
    with pytest.raises(UserError):
        archive_records(ledger, datetime(2025, 1, 5, tzinfo=UTC), out)  # never overwritten


def test_archive_and_checkpoint(ledger, tmp_path):
    ledger.append(dated(3, 1))
    cp = tmp_path / "cp.json"
    write_checkpoint(ledger, cp)
    ledger.append(dated(2, 9))
    archive_records(ledger, datetime(2025, 1, 5, tzinfo=UTC), tmp_path / "a.jsonl")
    # The checkpointed record is exactly the last archived one: the anchor vouches for it.
    assert ledger.verify(load_checkpoint(cp)).ok
    assert verify_archive(tmp_path / "a.jsonl", checkpoint=cp).ok


def test_archive_refuses_a_broken_chain(ledger, raw, tmp_path):
    ledger.append(dated(3, 1) + dated(1, 9))
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_records SET host = 'x' WHERE seq = 2"))
    with pytest.raises(MilepostError, match="broken chain"):
        archive_records(ledger, datetime(2025, 1, 5, tzinfo=UTC), tmp_path / "a.jsonl")
    assert not (tmp_path / "a.jsonl").exists()
    with raw.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ledger_records")).scalar_one() == 4


def test_live_chain_refuses_a_forged_start(ledger, raw, tmp_path):
    ledger.append(dated(3, 1) + dated(1, 9))
    archive_records(ledger, datetime(2025, 1, 5, tzinfo=UTC), tmp_path / "a.jsonl")
    with raw.begin() as conn:
        conn.execute(
            sa.text("UPDATE ledger_records SET prev_hash = :p WHERE seq = 4"), {"p": "1" * 64}
        )
    result = ledger.verify()
    assert not result.ok and result.first_bad_seq == 4


def test_export_jsonl_and_csv(ledger):
    ledger.append(
        [{"kind": "note", "run_id": "r", "host": None, "body": {"text": 'a,b\n"c"', "n": 1}}]
    )
    ledger.append(dated(2, 3))
    out = io.StringIO()
    assert ledger.export("jsonl", out) == 3
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert set(records[0]) == {
        "seq",
        "kind",
        "run_id",
        "host",
        "recorded_at",
        "body",
        "prev_hash",
        "hash",
    }
    first = records[0]
    assert first["body"] == {"text": 'a,b\n"c"', "n": 1}
    assert first["hash"] == chain_hash(
        first["prev_hash"],
        canonical_record(1, "note", "r", None, first["recorded_at"], canonical_body(first["body"])),
    )

    out = io.StringIO()
    assert ledger.export("csv", out) == 3
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [int(r["seq"]) for r in table] == [1, 2, 3]
    assert json.loads(table[0]["body"]) == first["body"] and table[2]["hash"] == records[2]["hash"]
    with pytest.raises(UserError):
        ledger.export("xml", io.StringIO())
