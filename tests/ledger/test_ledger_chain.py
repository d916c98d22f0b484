"""The canonical form and hash rule, independent of any database."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

from milepost.ledger.chain import (
    GENESIS_HASH,
    ChainWalker,
    canonical_body,
    canonical_record,
    chain_hash,
    format_time,
)


def test_canonical_record_is_sorted_compact_json_of_all_fields():
    body = {"zeta": 1, "alpha": [1, 2.5, {"ü": None, "b": True}], "text": "line\nbreak"}
    expected = json.dumps(
        {
            "seq": 7,
            "kind": "note",
            "run_id": None,
            "host": "web1",
            "recorded_at": "t",
            "body": body,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert canonical_record(7, "note", None, "web1", "t", canonical_body(body)) == expected


def test_hash_rule_and_genesis():
    canonical = canonical_record(1, "note", "r", None, "t", "{}")
    assert (
        chain_hash(GENESIS_HASH, canonical)
        == hashlib.sha256(("0" * 64).encode() + b"\n" + canonical).hexdigest()
    )


def test_odd_values_are_stored_as_text_not_rejected():
    text = canonical_body(
        {"when": datetime(2025, 1, 2, tzinfo=UTC), "nan": float("nan"), 3: "int key", "s": "\udcff"}
    )
    data = json.loads(text)
    assert data["when"].startswith("2025-01-02") and data["nan"] == "nan" and data["3"] == "int key"
    text.encode("utf-8")


def test_format_time_is_fixed_width_utc():
    assert format_time("2025-01-02") == "2025-01-02T00:00:00.000000Z"
    tz = timezone(timedelta(hours=-7))
    assert format_time(datetime(2025, 1, 2, 5, 0, tzinfo=tz)) == "2025-01-02T12:00:00.000000Z"


def test_walker_names_first_bad_record():
    prev, rows = GENESIS_HASH, []
    for seq in range(1, 4):
        body = canonical_body({"n": seq})
        digest = chain_hash(prev, canonical_record(seq, "note", None, None, "t", body))
        rows.append([seq, "note", None, None, "t", body, prev, digest])
        prev = digest
    walker = ChainWalker()
    assert all(walker.feed(*row) for row in rows) and walker.result().count == 3
    rows[1][5] = canonical_body({"n": 99})
    walker = ChainWalker()
    assert not all(walker.feed(*row) for row in rows)
    assert walker.first_bad_seq == 2
