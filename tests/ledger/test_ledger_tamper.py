"""Tampering: every single-record change is caught by verify; truncation and
rewrite-and-rehash need (and are caught by) a signed checkpoint."""

import json

import pytest
import sqlalchemy as sa
from ledger_helpers import plain_records

from milepost.errors import UserError
from milepost.ledger.chain import canonical_body, canonical_record, chain_hash
from milepost.ledger.checkpoint import load_checkpoint, write_checkpoint

COLUMNS = "seq, kind, run_id, host, recorded_at, body, prev_hash, hash"


def rows(raw):
    with raw.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                sa.text(f"SELECT {COLUMNS} FROM ledger_records ORDER BY seq")
            ).mappings()
        ]


def put(conn, row):
    conn.execute(
        sa.text(
            f"INSERT INTO ledger_records ({COLUMNS})"
            " VALUES (:seq, :kind, :run_id, :host, :recorded_at, :body, :prev_hash, :hash)"
        ),
        row,
    )


def rehash(row, prev):
    row["prev_hash"] = prev
    row["hash"] = chain_hash(
        prev,
        canonical_record(
            row["seq"], row["kind"], row["run_id"], row["host"], row["recorded_at"], row["body"]
        ),
    )
    return row["hash"]


def edit_body(conn, all_rows):
    conn.execute(sa.text("UPDATE ledger_records SET body = :b WHERE seq = 4"), {"b": '{"i":999}'})
    return 4


def edit_hash(conn, all_rows):
    conn.execute(sa.text("UPDATE ledger_records SET hash = :h WHERE seq = 4"), {"h": "f" * 64})
    return 4


def edit_and_rehash_one(conn, all_rows):
    row = dict(all_rows[3], body='{"i":999}')
    rehash(row, row["prev_hash"])
    conn.execute(sa.text("UPDATE ledger_records SET body = :body, hash = :hash WHERE seq = 4"), row)
    return 5  # record 5 no longer follows record 4


def delete_one(conn, all_rows):
    conn.execute(sa.text("DELETE FROM ledger_records WHERE seq = 4"))
    return 4


def delete_first(conn, all_rows):
    conn.execute(sa.text("DELETE FROM ledger_records WHERE seq = 1"))
    return 1


def swap_two(conn, all_rows):
    a, b = all_rows[3], all_rows[4]
    conn.execute(sa.text("DELETE FROM ledger_records WHERE seq IN (4, 5)"))
    put(conn, dict(b, seq=4))
    put(conn, dict(a, seq=5))
    return 4


def insert_forged(conn, all_rows):
    # Make room after record 3 and insert a well-formed record chained to it.
    for row in reversed(all_rows[3:]):
        conn.execute(
            sa.text("UPDATE ledger_records SET seq = seq + 1 WHERE seq = :s"), {"s": row["seq"]}
        )
    forged = {
        "seq": 4,
        "kind": "note",
        "run_id": None,
        "host": "h0",
        "recorded_at": all_rows[2]["recorded_at"],
        "body": canonical_body({"forged": True}),
    }
    rehash(forged, all_rows[2]["hash"])
    put(conn, forged)
    return 5  # the record after the forgery no longer fits


def insert_at_end(conn, all_rows):
    put(
        conn,
        {
            "seq": 7,
            "kind": "note",
            "run_id": None,
            "host": None,
            "recorded_at": "x",
            "body": "{}",
            "prev_hash": all_rows[-1]["hash"],
            "hash": "0" * 64,
        },
    )
    return 7


TAMPERS = [
    edit_body,
    edit_hash,
    edit_and_rehash_one,
    delete_one,
    delete_first,
    swap_two,
    insert_forged,
    insert_at_end,
]


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda f: f.__name__)
def test_single_record_tamper_is_named(ledger, raw, tamper):
    ledger.append(plain_records(6))
    assert ledger.verify().ok
    with raw.begin() as conn:
        bad_seq = tamper(conn, rows(raw))
    result = ledger.verify()
    assert not result.ok
    assert result.first_bad_seq == bad_seq, result.reason
    assert str(bad_seq) in result.reason


def truncate_tail(conn, all_rows):
    conn.execute(sa.text("DELETE FROM ledger_records WHERE seq > 4"))


def rewrite_and_rehash(conn, all_rows):
    prev = all_rows[1]["hash"]
    for row in all_rows[2:]:
        if row["seq"] == 3:
            row["body"] = '{"i":"rewritten"}'
        prev = rehash(row, prev)
        conn.execute(
            sa.text(
                "UPDATE ledger_records SET body = :body, prev_hash = :prev_hash, hash = :hash"
                " WHERE seq = :seq"
            ),
            row,
        )


@pytest.mark.parametrize("tamper", [truncate_tail, rewrite_and_rehash], ids=lambda f: f.__name__)
def test_checkpoint_catches_what_the_chain_cannot(ledger, raw, tmp_path, tamper):
    ledger.append(plain_records(6))
    cp = tmp_path / "head.json"
    document = write_checkpoint(ledger, cp)
    assert document["seq"] == 6 and document["count"] == 6
    ledger.append(plain_records(1))  # the ledger may grow past the checkpoint
    assert ledger.verify(load_checkpoint(cp)).ok
    with raw.begin() as conn:
        tamper(conn, rows(raw))
    assert ledger.verify().ok, "a plain verify cannot see this"
    result = ledger.verify(load_checkpoint(cp))
    assert not result.ok
    assert result.first_bad_seq in (5, 6)


def test_checkpoint_signature_is_checked(ledger, tmp_path, project):
    ledger.append(plain_records(3))
    cp = tmp_path / "head.json"
    write_checkpoint(ledger, cp)
    key = project / ".milepost" / "ledger-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    document = json.loads(cp.read_text())
    forged = dict(document, count=2, seq=2)
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    with pytest.raises(UserError, match="signature"):
        ledger.verify(load_checkpoint(tmp_path / "forged.json"))
    with pytest.raises(UserError, match="signed by key"):
        ledger.verify(load_checkpoint(cp, "AAAA" + document["public_key"][4:]))
    assert ledger.verify(load_checkpoint(cp, document["public_key"])).ok
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(UserError):
        ledger.verify(load_checkpoint(tmp_path / "junk.json"))


def test_checkpoint_refuses_a_broken_chain(ledger, raw, tmp_path):
    from milepost.errors import MilepostError

    ledger.append(plain_records(3))
    with raw.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_records SET body = '{}' WHERE seq = 2"))
    with pytest.raises(MilepostError, match="broken chain"):
        write_checkpoint(ledger, tmp_path / "cp.json")
    assert not (tmp_path / "cp.json").exists()
