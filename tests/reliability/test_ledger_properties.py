"""Property tests of the maintenance ledger (SQLite files in temporary directories), with
Hypothesis building the inputs. What is proved, for every input it tries:

- Any sequence of records, appended in any batching, verifies. Bodies are arbitrary JSON:
  text with bidi controls, zero-width, combining and other odd characters, nested dicts and
  lists, floats, and integers up to the 4300 digits Python turns into text. The stored body
  is the canonical text: it parses back to the body, and made canonical again it is the
  same text (so an archive file, which re-derives it, still verifies); every record is the
  documented json.dumps of its fields.
- Odd Python values (keys that are not text, sets, tuples, datetimes, NaN, bytes, lone
  surrogates) are stored as text, never rejected, and the text is still canonical: such
  records verify in the live chain and in an archive file.
- What the ledger cannot hold (a body containing itself, nested too deeply, an integer of
  more than 4300 digits; a bad kind, host, run id, recorded_at or body) is refused with one
  line (UserError), nothing of the batch is stored, and the ledger carries on.
- A stored body altered into anything (not JSON, not an object) on a record of a kind the
  ledger itself reads (archive anchors, open runs, task results, spool markers) is named by
  verify, and nothing the ledger does next crashes on it (housekeeping, replay, counts).
- A state machine appends batches, signs checkpoints and tampers through raw SQL (edit any
  column, edit a record and rehash it, delete, reorder, insert a forged record, truncate
  the tail, rewrite and rehash from a record on). Verify passes exactly when the stored
  chain is the acknowledged one, with one documented exception: a chain that is still valid
  (truncated, or rewritten and rehashed) is caught only when the change reaches into the
  latest signed checkpoint. Verify names the first bad record, and a checkpoint of a
  broken chain is refused.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from ledger_rows import COLUMNS, Row, execute, rehashed, stored_rows
from proving import tally, trials

from milepost.errors import MilepostError, UserError
from milepost.ledger import (
    GENESIS_HASH,
    Ledger,
    run_ended,
    run_started,
    spool,
    task_result,
    verify_archive,
)
from milepost.ledger.archive import archive as archive_records
from milepost.ledger.chain import canonical_body, canonical_record, format_time
from milepost.ledger.checkpoint import load_checkpoint, write_checkpoint

# ------------------------------------------------------------------------- strategies

#: Characters that have broken other systems' text handling: bidi overrides and isolates,
#: marks, zero-width characters, BOM, soft hyphen, combining accent, line and paragraph
#: separators, emoji and flags, DEL, ESC, control characters and JSON's own specials.
SPECIAL = (
    "\u202e\u202d\u202a\u202b\u202c\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u0301\u2028\u2029"
    "\U0001f600\U0001f1fa\U0001f1f8\x7f\x1b\x01\x1f\n\r\t\"\\/'<>&é"
)
CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00") | st.sampled_from(
    SPECIAL
)
TEXT = st.text(CHARS, max_size=24)


def names(limit: int) -> st.SearchStrategy[str]:
    """Envelope text (kind, host, run id): 1 to ``limit`` characters, NUL-free."""
    return st.text(CHARS, min_size=1, max_size=min(limit, 24)) | st.text(
        CHARS, min_size=limit, max_size=limit
    )


BIG = 10**4300 - 1  # the largest integer of 4300 digits: what int <-> text converts
INTEGERS = (
    st.integers()
    | st.integers(min_value=-(2**130), max_value=2**130)
    | st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**53 + 1, BIG, -BIG])
)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | INTEGERS | FLOATS | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=16,
)
BODIES = st.dictionaries(TEXT, JSON, max_size=6)

#: Python values JSON cannot hold as they are: stored as text or converted, never rejected.
SURROGATE_TEXT = st.text(st.characters(categories=("Cs", "L", "N", "P")), max_size=8)
ODD_KEYS = (
    TEXT
    | SURROGATE_TEXT
    | st.integers(-(10**6), 10**6)
    | st.floats()
    | st.booleans()
    | st.none()
    | st.tuples(st.integers(0, 9), TEXT)
)
ODD_SCALARS = (
    SCALARS
    | SURROGATE_TEXT
    | st.floats()
    | st.datetimes(timezones=st.none() | st.just(UTC))
    | st.dates()
    | st.binary(max_size=8)
    | st.decimals(allow_nan=False, places=3)
    | st.frozensets(SURROGATE_TEXT | TEXT, max_size=3)
    | st.sets(st.integers(-5, 5), max_size=3)
)
ODD = st.recursive(
    ODD_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(ODD_KEYS, inner, max_size=3)
    ),
    max_leaves=12,
)
ODD_BODIES = st.dictionaries(ODD_KEYS, ODD, max_size=5)
PORTS = {80: "open", 443: "open", 8080: "closed"}

KIND_NAMES = [
    "note",
    "task_result",
    "package_change",
    "package_facts",
    "advisory",
    "run_started",
    "archive_anchor",
    "spool_replayed",
]
# (not run_ended: its body gets the run's host counts added on append)
KINDS = (st.sampled_from(KIND_NAMES) | names(64)).filter(lambda kind: kind != "run_ended")
ZONES = st.none() | st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES
) | st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda moment: moment.isoformat()
)


def records(bodies: st.SearchStrategy[dict[Any, Any]] = BODIES) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "kind": KINDS,
            "run_id": st.none() | names(128),
            "host": st.none() | names(255),
            "body": bodies,
        },
        optional={"recorded_at": TIMES},
    )


# ---------------------------------------------------------------------------- ledgers


@functools.cache
def empty_ledger_file() -> Path:
    """An empty ledger with its schema made once; each example starts from a copy."""
    folder = Path(tempfile.mkdtemp(prefix="milepost-properties-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "empty.sqlite"
    ledger = Ledger.open(f"sqlite:///{path}")
    ledger.close()
    assert not Path(f"{path}-wal").exists(), "the template must be one self-contained file"
    return path


@contextmanager
def fresh_ledger() -> Iterator[tuple[Ledger, Path]]:
    """A new empty SQLite ledger in a temporary directory: (ledger, directory)."""
    with tempfile.TemporaryDirectory(prefix="milepost-properties-") as name:
        folder = Path(name)
        shutil.copy(empty_ledger_file(), folder / "ledger.sqlite")
        ledger = Ledger.open(f"sqlite:///{folder / 'ledger.sqlite'}")
        try:
            yield ledger, folder
        finally:
            ledger.close()


def batches(items: list[Any], cuts: list[int]) -> list[list[Any]]:
    """``items`` split at the positions in ``cuts`` (repeated cuts make empty batches)."""
    edges = [0, *sorted(min(cut, len(items)) for cut in cuts), len(items)]
    return [items[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# ------------------------------------------------------------------ canonical form


@settings(max_examples=trials(300, 3000), deadline=None)
@given(body=BODIES)
def test_canonical_body_is_sorted_compact_json_and_round_trips(body):
    text = canonical_body(body)
    assert text == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text.encode("utf-8")
    assert json.loads(text) == body
    assert canonical_body(json.loads(text)) == text


@settings(max_examples=trials(200, 2000), deadline=None)
@given(
    seq=st.integers(1, 2**62),
    kind=names(64),
    run_id=st.none() | names(128),
    host=st.none() | names(255),
    moment=TIMES,
    body=BODIES,
)
def test_canonical_record_is_the_documented_json_of_every_field(
    seq, kind, run_id, host, moment, body
):
    recorded_at = format_time(moment)
    assert len(recorded_at) == len("2025-01-02T03:04:05.000000Z"), "fixed width, sorts as text"
    fields = {"seq": seq, "kind": kind, "run_id": run_id, "host": host, "body": body}
    expected = json.dumps(
        fields | {"recorded_at": recorded_at},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    assert canonical_record(seq, kind, run_id, host, recorded_at, canonical_body(body)) == expected


@settings(max_examples=trials(300, 3000), deadline=None)
@given(body=ODD_BODIES)
def test_odd_values_are_stored_as_canonical_text_not_rejected(body):
    text = canonical_body(body)
    text.encode("utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    assert canonical_body(data) == text, "parsed and made canonical again, the same text"


# -------------------------------------------------------------- appending and verify


@settings(max_examples=trials(60, 600), deadline=None)
@given(items=st.lists(records(), max_size=25), cuts=st.lists(st.integers(0, 25), max_size=6))
def test_any_records_appended_in_any_batching_verify(items, cuts):
    with fresh_ledger() as (ledger, folder):
        seqs: list[int] = []
        for batch in batches(items, cuts):
            seqs += ledger.append(batch)
        assert seqs == list(range(1, len(items) + 1))
        result = ledger.verify()
        assert result.ok, result.reason
        assert (result.count, result.head_seq) == (len(items), len(items) or None)
        rows = stored_rows(folder / "ledger.sqlite")
        assert [row[0] for row in rows] == seqs
        for item, row in zip(items, rows, strict=True):
            assert row[1:4] == (item["kind"], item["run_id"], item["host"])
            assert row[5] == canonical_body(item["body"])
            assert json.loads(row[5]) == item["body"]
            assert canonical_body(json.loads(row[5])) == row[5]


@settings(max_examples=trials(25, 250), deadline=None)
@given(
    items=st.lists(records(BODIES | ODD_BODIES), min_size=1, max_size=12),
    kept=st.lists(records(), min_size=1, max_size=3),
)
@example(  # integer keys: json sorts 80 before 443, as text "443" comes first
    items=[{"kind": "port_scan", "run_id": None, "host": "web1", "body": {"ports": PORTS}}],
    kept=[{"kind": "note", "run_id": None, "host": None, "body": {}}],
)
def test_odd_records_verify_in_the_live_chain_and_in_an_archive_file(items, kept):
    """The archive file re-derives each body's canonical text from its JSON: a stored text
    that was not canonical would make an honest archive look altered."""
    old = [dict(item, recorded_at="2020-06-01T00:00:00Z") for item in items]
    new = [dict(item, recorded_at="2025-06-01T00:00:00Z") for item in kept]
    with fresh_ledger() as (ledger, folder):
        ledger.append(old)
        ledger.append(new)
        assert ledger.verify().ok
        out = folder / "archive.jsonl"
        assert archive_records(ledger, datetime(2021, 1, 1, tzinfo=UTC), out) == len(old)
        archived = verify_archive(out)
        assert archived.ok, archived.reason
        assert archived.count == len(old)
        live = ledger.verify()
        assert live.ok, live.reason
        assert (live.first_seq, live.count) == (len(old) + 1, len(new) + 1)


# -------------------------------------------------------------------------- refusals


def circular(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    body["self"] = [body]
    return body


def deep(body: dict[str, Any]) -> dict[str, Any]:
    nested: list[Any] = []
    for _ in range(50_000):
        nested = [nested]
    return dict(body, deep=nested)


UNSTORABLE_BODIES = {
    "body containing itself": circular,
    "body nested 50,000 deep": deep,
    "integer of 4301 digits": lambda body: dict(body, n={"in": [10**4300]}),
    "negative integer of 4301 digits": lambda body: dict(body, n=-(10**4300)),
    "key of 4301 digits": lambda body: dict(body, n={10**4300: 1}),
}
MALFORMED = {
    "not a dict": lambda good: [good["kind"], good["body"]],
    "unexpected field": lambda good: dict(good, seq=7),
    "no kind": lambda good: {k: v for k, v in good.items() if k != "kind"},
    "empty kind": lambda good: dict(good, kind=""),
    "kind of 65 characters": lambda good: dict(good, kind="k" * 65),
    "kind not text": lambda good: dict(good, kind=5),
    "kind with a lone surrogate": lambda good: dict(good, kind="note\udcff"),
    "empty host": lambda good: dict(good, host=""),
    "host of 256 characters": lambda good: dict(good, host="h" * 256),
    "host not text": lambda good: dict(good, host=["web1"]),
    "host with a lone surrogate": lambda good: dict(good, host="web\ud800"),
    "run id of 129 characters": lambda good: dict(good, run_id="r" * 129),
    "run id with a lone surrogate": lambda good: dict(good, run_id="\udc80"),
    "body a list": lambda good: dict(good, body=[1, 2]),
    "body text": lambda good: dict(good, body="{}"),
    "recorded_at not ISO-8601": lambda good: dict(good, recorded_at="last tuesday"),
    "recorded_at not a time": lambda good: dict(good, recorded_at=1735689600),
    "recorded_at out of range in UTC": lambda good: dict(
        good, recorded_at="9999-12-31T23:30:00-05:00"
    ),
    "recorded_at before year 1 in UTC": lambda good: dict(
        good, recorded_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=3)))
    ),
}
HOSTILE = {name: ("body", make) for name, make in UNSTORABLE_BODIES.items()} | {
    name: ("record", make) for name, make in MALFORMED.items()
}


@settings(max_examples=trials(60, 600), deadline=None)
@given(
    hostile=st.sampled_from(sorted(HOSTILE)),
    good=st.lists(records(), min_size=1, max_size=6),
    before=st.lists(records(), max_size=4),
    data=st.data(),
)
def test_what_the_ledger_cannot_hold_is_refused_in_one_line_and_nothing_is_stored(
    hostile, good, before, data
):
    where, make = HOSTILE[hostile]
    victim = good[0]
    bad = dict(victim, body=make(victim["body"])) if where == "body" else make(victim)
    batch = [*good[1:]]
    batch.insert(data.draw(st.integers(0, len(batch)), label="position"), bad)
    with fresh_ledger() as (ledger, _):
        ledger.append(before)
        with pytest.raises(UserError) as refused:
            ledger.append(batch)
        message = str(refused.value)
        assert "\n" not in message and message.startswith(("ledger record", "a ledger record"))
        assert len(message) < 500
        result = ledger.verify()
        assert result.ok and result.count == len(before), "nothing of the batch is stored"
        assert ledger.append(good[1:]) == list(range(len(before) + 1, len(before) + len(good)))
        assert ledger.verify().ok
    tally("hostile inputs tried")


# --------------------------------------------------- bodies altered into anything


def read_kind_records(kind: str, size: int) -> list[dict[str, Any]]:
    """``size`` records of a kind whose bodies the ledger itself reads: archive anchors
    (verify), open runs (every command's housekeeping), task results (a run_ended's
    counts), spool markers (replay)."""
    if kind == "run_started":
        return [run_started(playbook="playbooks/maintain.yml", run_id=f"r{i}") for i in range(size)]
    if kind == "task_result":
        return [task_result("r0", f"web{i}", "PATCH | update", "changed", 0.5) for i in range(size)]
    body = {
        "archive_anchor": {"archived_through_seq": 0, "archived_last_hash": GENESIS_HASH},
        "spool_replayed": {"file": "20250101T000000Z-1-0001.jsonl", "count": 1},
    }[kind]
    return [{"kind": kind, "run_id": None, "host": None, "body": body} for _ in range(size)]


@settings(max_examples=trials(40, 400), deadline=None)
@given(
    kind=st.sampled_from(["archive_anchor", "run_started", "task_result", "spool_replayed"]),
    junk=st.sampled_from(["", "{", '{"x":', "null", "[]", '"text"', "5", "{}"]) | TEXT,
    size=st.integers(1, 5),
    data=st.data(),
)
def test_a_body_altered_into_anything_is_named_by_verify_and_crashes_nothing(
    kind, junk, size, data
):
    with fresh_ledger() as (ledger, folder):
        ledger.append(read_kind_records(kind, size))
        seq = data.draw(st.integers(1, size), label="seq")
        db = folder / "ledger.sqlite"
        assume(stored_rows(db)[seq - 1][5] != junk)
        execute(db, ("UPDATE ledger_records SET body = ? WHERE seq = ?", (junk, seq)))
        result = ledger.verify()
        assert (result.ok, result.first_bad_seq) == (False, seq), result.reason
        # What a writer and every command's housekeeping do next must not crash on it:
        ledger.close_stale_runs()
        spool.spool([{"kind": "note", "body": {}}], "test", directory=folder / "spool")
        assert spool.replay(ledger, directory=folder / "spool") == 1
        ledger.append([run_ended("r0", "failed")])
        after = ledger.verify()
        assert (after.ok, after.first_bad_seq) == (False, seq), after.reason
    tally("tamper cases detected")


# ------------------------------------------------------------------- state machine


@dataclass
class Tamper:
    """What a tamper did. ``first_bad``: the record a plain verify must name (None: the
    chain is still valid, the documented blind spot). ``first_changed``: the first seq
    whose stored record differs from, or lacks, the acknowledged one."""

    name: str
    first_bad: int | None
    first_changed: int
    counted: bool = False


HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
EDITABLE = ("kind", "run_id", "host", "recorded_at", "body", "prev_hash", "hash")
MACHINE_BODIES = st.dictionaries(
    TEXT,
    st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)


class LedgerMachine(RuleBasedStateMachine):
    """The model: ``acked`` is every row the ledger acknowledged (read back after append);
    ``tamper`` what was done behind its back since (at most one tamper at a time; restore
    puts the acknowledged rows back); ``point`` the latest signed checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="milepost-ledger-machine-"))
        self.db = self.folder / "ledger.sqlite"
        shutil.copy(empty_ledger_file(), self.db)
        self.ledger = Ledger.open(f"sqlite:///{self.db}")
        self.acked: list[Row] = []
        self.tamper: Tamper | None = None
        self.point: tuple[Path, int, str, str] | None = None  # file, seq, head hash, key
        self.checkpoints = 0

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------- honest work

    @precondition(lambda self: self.tamper is None)
    @rule(batch=st.lists(records(MACHINE_BODIES), min_size=1, max_size=6))
    def append_a_batch(self, batch):
        before = len(self.acked)
        seqs = self.ledger.append(batch)
        assert seqs == list(range(before + 1, before + len(batch) + 1))
        rows = stored_rows(self.db)
        assert rows[:before] == self.acked, "an append changed an acknowledged record"
        assert [row[0] for row in rows[before:]] == seqs
        for item, row in zip(batch, rows[before:], strict=True):
            assert row[5] == canonical_body(item["body"])
        self.acked = rows

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule()
    def sign_a_checkpoint(self):
        self.checkpoints += 1
        out = self.folder / f"checkpoint-{self.checkpoints}.json"
        document = write_checkpoint(self.ledger, out, key_path=self.folder / "signing.key")
        head = self.acked[-1]
        assert (document["seq"], document["count"], document["head_hash"]) == (
            head[0],
            len(self.acked),
            head[7],
        )
        self.point = (out, head[0], head[7], document["public_key"])

    @precondition(lambda self: self.tamper is not None)
    @rule()
    def restore_the_acknowledged_rows(self):
        placeholders = ", ".join("?" * len(COLUMNS))
        execute(
            self.db,
            ("DELETE FROM ledger_records", ()),
            *(
                (f"INSERT INTO ledger_records ({', '.join(COLUMNS)}) VALUES ({placeholders})", r)
                for r in self.acked
            ),
        )
        self.tamper = None

    @precondition(lambda self: self.tamper is not None and self.tamper.first_bad is not None)
    @rule()
    def a_broken_chain_is_not_signed(self):
        out = self.folder / "refused.json"
        with pytest.raises(MilepostError, match="broken chain"):
            write_checkpoint(self.ledger, out, key_path=self.folder / "signing.key")
        assert not out.exists()

    # ---------------------------------------------------------------- tampers

    def tampered(self, name: str, first_bad: int | None, first_changed: int) -> None:
        self.tamper = Tamper(name, first_bad, first_changed)

    def update(self, row: Row) -> tuple[str, tuple[Any, ...]]:
        """SQL that puts ``row``'s content (all but seq) at its seq."""
        sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
        return f"UPDATE ledger_records SET {sets} WHERE seq = ?", (*row[1:], row[0])

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule(data=st.data())
    def edit_columns_of_a_record(self, data):
        seq = data.draw(st.integers(1, len(self.acked)), label="seq")
        columns = data.draw(st.sets(st.sampled_from(EDITABLE), min_size=1, max_size=3))
        hashes = [row[7] for row in self.acked] + [GENESIS_HASH]
        for column in sorted(columns):
            old = self.acked[seq - 1][COLUMNS.index(column)]
            values = {
                # kinds whose bodies the ledger reads (anchors, open runs, counts) as well
                "kind": lambda: st.sampled_from([*KIND_NAMES, "run_ended"]) | names(64),
                "run_id": lambda: st.none() | names(128),
                "host": lambda: st.none() | names(255),
                "recorded_at": lambda: TIMES.map(format_time) | TEXT,
                # canonical, the same JSON re-serialised, or not JSON at all
                "body": lambda: (
                    MACHINE_BODIES.map(canonical_body)
                    | st.just(json.dumps(json.loads(old), indent=1))
                    | st.just(old + " ")
                    | TEXT
                    | st.sampled_from(["", "{", '{"x":', "null", "[]", "not json"])
                ),
                "prev_hash": lambda: HEX64 | st.sampled_from(hashes),
                "hash": lambda: HEX64 | st.sampled_from(hashes),
            }[column]()
            new = data.draw(values.filter(lambda value: value != old), label=column)
            execute(self.db, (f"UPDATE ledger_records SET {column} = ? WHERE seq = ?", (new, seq)))
        self.tampered(f"edit {', '.join(sorted(columns))}", seq, seq)

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule(data=st.data())
    def edit_a_record_and_rehash_it_alone(self, data):
        seq = data.draw(st.integers(1, len(self.acked)), label="seq")
        row = self.acked[seq - 1]
        body = data.draw(MACHINE_BODIES.map(canonical_body).filter(lambda b: b != row[5]))
        execute(self.db, self.update(rehashed(row, row[6], body=body)))
        last = seq == len(self.acked)  # at the head this is a valid chain: a rewrite
        self.tampered("edit and rehash one", None if last else seq + 1, seq)

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule(data=st.data())
    def delete_a_record(self, data):
        seq = data.draw(st.integers(1, len(self.acked)), label="seq")
        execute(self.db, ("DELETE FROM ledger_records WHERE seq = ?", (seq,)))
        last = seq == len(self.acked)  # the last record: a truncation
        self.tampered("delete", None if last else seq, seq)

    @precondition(lambda self: self.tamper is None and len(self.acked) >= 2)
    @rule(data=st.data())
    def reorder_records(self, data):
        first = data.draw(st.integers(1, len(self.acked) - 1), label="first")
        other = data.draw(st.integers(first + 1, len(self.acked)), label="other")
        how = data.draw(st.sampled_from(["swap", "move forward", "move back"]), label="how")
        span = list(self.acked[first - 1 : other])
        if how == "swap":
            span[0], span[-1] = span[-1], span[0]
        elif how == "move forward":
            span = [*span[1:], span[0]]
        else:
            span = [span[-1], *span[:-1]]
        execute(
            self.db,
            *(
                self.update((seq, *row[1:]))
                for seq, row in zip(range(first, other + 1), span, strict=True)
            ),
        )
        self.tampered(f"reorder ({how})", first, first)

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule(data=st.data(), forged=records(MACHINE_BODIES))
    def insert_a_forged_record(self, data, forged):
        # Before an existing record: a record slipped in after the head is an append,
        # indistinguishable from an honest one.
        at = data.draw(st.integers(1, len(self.acked)), label="at")
        prev = self.acked[at - 2][7] if at > 1 else GENESIS_HASH
        moment = forged.get("recorded_at")
        row = rehashed(
            (at, forged["kind"], forged["run_id"], forged["host"], None, None, None, None),
            prev,
            recorded_at=format_time(moment) if moment is not None else self.acked[at - 1][4],
            body=canonical_body(forged["body"]),
        )
        placeholders = ", ".join("?" * len(COLUMNS))
        execute(
            self.db,
            ("UPDATE ledger_records SET seq = -seq WHERE seq >= ?", (at,)),
            ("UPDATE ledger_records SET seq = 1 - seq WHERE seq < 0", ()),
            (f"INSERT INTO ledger_records ({', '.join(COLUMNS)}) VALUES ({placeholders})", row),
        )
        self.tampered("insert", at + 1, at)

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule(data=st.data())
    def truncate_the_tail(self, data):
        keep = data.draw(st.integers(0, len(self.acked) - 1), label="keep")
        execute(self.db, ("DELETE FROM ledger_records WHERE seq > ?", (keep,)))
        self.tampered("truncate", None, keep + 1)

    @precondition(lambda self: self.tamper is None and self.acked)
    @rule(data=st.data())
    def rewrite_and_rehash_from_a_record(self, data):
        start = data.draw(st.integers(1, len(self.acked)), label="from")
        row = self.acked[start - 1]
        body = data.draw(MACHINE_BODIES.map(canonical_body).filter(lambda b: b != row[5]))
        prev = row[6]
        statements = []
        for old in self.acked[start - 1 :]:
            new = rehashed(old, prev, body=body) if old is row else rehashed(old, prev)
            statements.append(self.update(new))
            prev = new[7]
        execute(self.db, *statements)
        self.tampered("rewrite and rehash", None, start)

    # -------------------------------------------------------------- the check

    @invariant()
    def verify_passes_exactly_when_nothing_was_altered(self):
        rows = stored_rows(self.db)
        altered = rows != self.acked
        assert altered == (self.tamper is not None), "the model and the database disagree"
        plain = self.ledger.verify()
        signed = plain
        if self.point is not None:
            path, _, _, key = self.point
            signed = self.ledger.verify(load_checkpoint(path, key))
        if not altered:
            assert plain.ok, plain.reason
            assert signed.ok, signed.reason
            assert plain.count == len(rows)
            assert plain.head_hash == (rows[-1][7] if rows else GENESIS_HASH)
            return
        tamper = self.tamper
        assert tamper is not None
        if tamper.first_bad is not None:
            assert not plain.ok, f"{tamper.name} not caught"
            assert plain.first_bad_seq == tamper.first_bad, (tamper, plain.reason)
            assert str(tamper.first_bad) in (plain.reason or "")
            assert (signed.ok, signed.first_bad_seq) == (False, tamper.first_bad)
            caught = True
        else:
            # The documented limit: a chain that is still valid passes a plain verify ...
            assert plain.ok, (tamper, plain.reason)
            checkpointed = self.point[1] if self.point is not None else None
            if checkpointed is not None and tamper.first_changed <= checkpointed:
                # ... and a checkpoint catches it when the change reaches into its head,
                assert not signed.ok, f"{tamper.name} at {tamper.first_changed} not caught"
                expected = len(rows) + 1 if len(rows) < checkpointed else checkpointed
                assert signed.first_bad_seq == expected, (tamper, signed.reason)
                caught = True
            else:
                # ... not when the change is newer than the checkpoint (or there is none).
                assert signed.ok, (tamper, signed.reason)
                caught = False
        if caught and not tamper.counted:
            tamper.counted = True
            tally("tamper cases detected")


def test_ledger_state_machine_verify_passes_exactly_when_nothing_was_altered():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=trials(50, 400), stateful_step_count=trials(25, 50), deadline=None
        ),
    )
